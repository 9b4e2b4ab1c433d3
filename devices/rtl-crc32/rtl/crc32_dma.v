// CRC-32 accelerator with a DMA read master.
//
// Computes the IEEE 802.3 CRC-32 (reflected, polynomial 0x04C11DB7, as zlib's crc32()) of LEN bytes of memory
// starting at byte address SRC, fetched one 32-bit little-endian word per DMA transfer, one byte per clock.
//
// Register port (APB-like, 32-bit registers, word aligned):
//   setup cycle  : psel=1 penable=0 with paddr/pwrite/pwdata valid
//   access cycles: psel=1 penable=1, held until pready=1; the transfer completes on the rising edge where
//                  pready=1 (prdata and pslverr are sampled on that edge).
//   Writes complete in the first access cycle; reads take one wait state (prdata is registered).
//   pslverr=1 for an offset outside the register map or not word aligned (the write is dropped, reads give 0).
//
// Register map (offsets in bytes):
//   0x00 ID      RO  0x43523332 ("CR32")
//   0x04 CTRL    RW  bit0 START (write 1 to start; reads 0), bit1 IRQ_EN
//   0x08 STATUS  RW  bit0 BUSY (RO), bit1 DONE (W1C), bit2 ERROR (W1C)
//   0x0C SRC_LO  RW  source address bits 31..0
//   0x10 SRC_HI  RW  source address bits 63..32
//   0x14 LEN     RW  length in bytes
//   0x18 SEED    RW  CRC to continue from (0 for a fresh CRC), as zlib's crc32(seed, buf, len)
//   0x1C RESULT  RO  CRC of the last completed operation
// START latches SRC, LEN and SEED; writing them while BUSY does not disturb the running operation.
// START while BUSY is ignored and sets ERROR. LEN=0 completes at once with RESULT=SEED.
// A DMA error aborts the operation: BUSY clears, ERROR sets, RESULT keeps its previous value.
//
// DMA read master (served by the simulation wrapper from guest memory):
//   dma_req/dma_addr: a request for the 32-bit word at dma_addr (4-byte aligned), held until the edge where
//   dma_ack=1. dma_ack is high for exactly one cycle per request, with dma_rdata (or dma_err=1) valid.
//   dma_req is dropped on the ack edge unless a new request (new dma_addr) starts on that same edge.
//
// irq  = IRQ_EN & (DONE | ERROR), a level.
// active = the engine has work in flight; the wrapper keeps the clock running while it is high.
module crc32_dma (
    input  wire        clk,
    input  wire        rst_n,

    input  wire        psel,
    input  wire        penable,
    input  wire        pwrite,
    input  wire [7:0]  paddr,
    input  wire [31:0] pwdata,
    output reg  [31:0] prdata,
    output wire        pready,
    output wire        pslverr,

    output reg         dma_req,
    output reg  [63:0] dma_addr,
    input  wire        dma_ack,
    input  wire [31:0] dma_rdata,
    input  wire        dma_err,

    output wire        irq,
    output wire        active
);
    localparam [31:0] ID_VALUE = 32'h43523332;

    localparam [7:0] A_ID     = 8'h00;
    localparam [7:0] A_CTRL   = 8'h04;
    localparam [7:0] A_STATUS = 8'h08;
    localparam [7:0] A_SRC_LO = 8'h0C;
    localparam [7:0] A_SRC_HI = 8'h10;
    localparam [7:0] A_LEN    = 8'h14;
    localparam [7:0] A_SEED   = 8'h18;
    localparam [7:0] A_RESULT = 8'h1C;

    localparam [1:0] S_IDLE  = 2'd0;
    localparam [1:0] S_FETCH = 2'd1;
    localparam [1:0] S_CALC  = 2'd2;

    // Programmer-visible registers.
    reg        irq_en;
    reg        done;
    reg        error;
    reg [63:0] src;
    reg [31:0] len;
    reg [31:0] seed;
    reg [31:0] result;

    // Engine.
    reg [1:0]  state;
    reg [31:0] remaining;
    reg [1:0]  byte_idx;
    reg [31:0] word;
    reg [31:0] crc;

    wire busy = (state != S_IDLE);

    // Bus decode.
    wire access   = psel & penable;
    wire mapped   = (paddr[1:0] == 2'b00) && (paddr <= A_RESULT);
    reg  rd_wait;                       // the read's wait state has passed
    assign pready  = pwrite ? 1'b1 : rd_wait;
    assign pslverr = access & pready & ~mapped;
    wire wr_fire   = access & pwrite & mapped;
    wire rd_first  = access & ~pwrite & ~rd_wait;

    wire start_req = wr_fire && (paddr == A_CTRL) && pwdata[0];

    function automatic [31:0] crc_byte(input [31:0] c, input [7:0] d);
        reg [31:0] x;
        integer i;
        begin
            x = c ^ {24'd0, d};
            for (i = 0; i < 8; i = i + 1)
                x = x[0] ? ((x >> 1) ^ 32'hEDB88320) : (x >> 1);
            crc_byte = x;
        end
    endfunction

    reg [7:0] cur_byte;
    always @(*) begin
        case (byte_idx)
            2'd0: cur_byte = word[7:0];
            2'd1: cur_byte = word[15:8];
            2'd2: cur_byte = word[23:16];
            default: cur_byte = word[31:24];
        endcase
    end
    wire [31:0] crc_next = crc_byte(crc, cur_byte);

    always @(posedge clk) begin
        if (!rst_n) begin
            rd_wait <= 1'b0;
            prdata  <= 32'd0;
        end else begin
            rd_wait <= rd_first;
            if (rd_first) begin
                case (paddr)
                    A_ID:     prdata <= ID_VALUE;
                    A_CTRL:   prdata <= {30'd0, irq_en, 1'b0};
                    A_STATUS: prdata <= {29'd0, error, done, busy};
                    A_SRC_LO: prdata <= src[31:0];
                    A_SRC_HI: prdata <= src[63:32];
                    A_LEN:    prdata <= len;
                    A_SEED:   prdata <= seed;
                    A_RESULT: prdata <= result;
                    default:  prdata <= 32'd0;
                endcase
            end
        end
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            irq_en    <= 1'b0;
            done      <= 1'b0;
            error     <= 1'b0;
            src       <= 64'd0;
            len       <= 32'd0;
            seed      <= 32'd0;
            result    <= 32'd0;
            state     <= S_IDLE;
            remaining <= 32'd0;
            byte_idx  <= 2'd0;
            word      <= 32'd0;
            crc       <= 32'd0;
            dma_req   <= 1'b0;
            dma_addr  <= 64'd0;
        end else begin
            // Register writes.
            if (wr_fire) begin
                case (paddr)
                    A_CTRL:   irq_en <= pwdata[1];
                    A_STATUS: begin
                        if (pwdata[1]) done  <= 1'b0;
                        if (pwdata[2]) error <= 1'b0;
                    end
                    A_SRC_LO: src[31:0]  <= pwdata;
                    A_SRC_HI: src[63:32] <= pwdata;
                    A_LEN:    len        <= pwdata;
                    A_SEED:   seed       <= pwdata;
                    default:  ;
                endcase
            end

            // Engine.
            case (state)
                S_IDLE: begin
                    if (start_req) begin
                        if (len == 32'd0) begin
                            result <= seed;
                            done   <= 1'b1;
                        end else begin
                            crc       <= ~seed;
                            remaining <= len;
                            byte_idx  <= src[1:0];
                            dma_addr  <= {src[63:2], 2'b00};
                            dma_req   <= 1'b1;
                            state     <= S_FETCH;
                        end
                    end
                end
                S_FETCH: begin
                    if (start_req) error <= 1'b1;
                    if (dma_ack) begin
                        dma_req <= 1'b0;
                        if (dma_err) begin
                            error <= 1'b1;
                            state <= S_IDLE;
                        end else begin
                            word  <= dma_rdata;
                            state <= S_CALC;
                        end
                    end
                end
                S_CALC: begin
                    if (start_req) error <= 1'b1;
                    crc       <= crc_next;
                    remaining <= remaining - 32'd1;
                    byte_idx  <= byte_idx + 2'd1;
                    if (remaining == 32'd1) begin
                        result <= ~crc_next;
                        done   <= 1'b1;
                        state  <= S_IDLE;
                    end else if (byte_idx == 2'd3) begin
                        dma_addr <= dma_addr + 64'd4;
                        dma_req  <= 1'b1;
                        state    <= S_FETCH;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    assign irq    = irq_en & (done | error);
    assign active = busy;
endmodule
