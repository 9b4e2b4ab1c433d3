// Test peripheral for the DMA write side of the plexus RTL port contract: copies WORDS 32-bit words from SRC to
// DST, XORing each with KEY, writing only the byte lanes set in MASK (dma_wstrb). One read transfer, then one
// write transfer per word.
//   0x00 CTRL   W   bit0 START          0x04 STATUS R  bit0 BUSY, bit1 DONE, bit2 ERROR (cleared by START)
//   0x08 SRC    RW  byte address (low 32 bits; the high half is 0)
//   0x0C DST    RW  byte address        0x10 WORDS  RW  word count
//   0x14 KEY    RW  XOR key             0x18 MASK   RW  byte lanes to write (bits 3..0)
module dma_xor (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        psel,
    input  wire        penable,
    input  wire        pwrite,
    input  wire [7:0]  paddr,
    input  wire [31:0] pwdata,
    output reg  [31:0] prdata,
    output wire        pready,
    output reg         dma_req,
    output reg         dma_we,
    output reg  [63:0] dma_addr,
    output reg  [31:0] dma_wdata,
    output wire [3:0]  dma_wstrb,
    input  wire        dma_ack,
    input  wire [31:0] dma_rdata,
    input  wire        dma_err,
    output wire        active
);
    reg [31:0] src, dst, words, key;
    reg [3:0]  mask;
    reg        done, error;
    reg [1:0]  state;               // 0 idle, 1 reading, 2 writing
    reg [31:0] left, rd_ptr, wr_ptr;

    assign pready    = 1'b1;
    assign dma_wstrb = mask;
    assign active    = state != 2'd0;

    wire wr = psel & penable & pwrite;

    always @(*) begin
        case (paddr)
            8'h04:   prdata = {29'd0, error, done, active};
            8'h08:   prdata = src;
            8'h0C:   prdata = dst;
            8'h10:   prdata = words;
            8'h14:   prdata = key;
            8'h18:   prdata = {28'd0, mask};
            default: prdata = 32'd0;
        endcase
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            src <= 32'd0; dst <= 32'd0; words <= 32'd0; key <= 32'd0; mask <= 4'hF;
            done <= 1'b0; error <= 1'b0; state <= 2'd0; left <= 32'd0; rd_ptr <= 32'd0; wr_ptr <= 32'd0;
            dma_req <= 1'b0; dma_we <= 1'b0; dma_addr <= 64'd0; dma_wdata <= 32'd0;
        end else begin
            if (wr) begin
                case (paddr)
                    8'h08: src   <= pwdata;
                    8'h0C: dst   <= pwdata;
                    8'h10: words <= pwdata;
                    8'h14: key   <= pwdata;
                    8'h18: mask  <= pwdata[3:0];
                    default: ;
                endcase
            end
            case (state)
                2'd0: if (wr && paddr == 8'h00 && pwdata[0]) begin
                    done <= 1'b0;
                    error <= 1'b0;
                    if (words == 32'd0) begin
                        done <= 1'b1;
                    end else begin
                        left     <= words;
                        rd_ptr   <= src + 32'd4;
                        wr_ptr   <= dst;
                        dma_addr <= {32'd0, src};
                        dma_we   <= 1'b0;
                        dma_req  <= 1'b1;
                        state    <= 2'd1;
                    end
                end
                2'd1: if (dma_ack) begin
                    if (dma_err) begin
                        dma_req <= 1'b0;
                        error   <= 1'b1;
                        state   <= 2'd0;
                    end else begin
                        dma_addr  <= {32'd0, wr_ptr};
                        dma_wdata <= dma_rdata ^ key;
                        dma_we    <= 1'b1;
                        state     <= 2'd2;      // dma_req stays high: a new request on the ack edge
                    end
                end
                2'd2: if (dma_ack) begin
                    if (dma_err || left == 32'd1) begin
                        dma_req <= 1'b0;
                        dma_we  <= 1'b0;
                        error   <= dma_err;
                        done    <= ~dma_err;
                        state   <= 2'd0;
                    end else begin
                        left     <= left - 32'd1;
                        wr_ptr   <= wr_ptr + 32'd4;
                        rd_ptr   <= rd_ptr + 32'd4;
                        dma_addr <= {32'd0, rd_ptr};
                        dma_we   <= 1'b0;
                        state    <= 2'd1;
                    end
                end
                default: state <= 2'd0;
            endcase
        end
    end
endmodule
