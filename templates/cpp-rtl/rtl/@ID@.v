// @NAME@: a peripheral with one register, made by `plexus new-device --lang cpp-rtl` (see README.md).
//
// Register port: the plexus RTL port contract (APB-like; @DOCDIR@/cosim.md), 32-bit registers:
//   0x0  VALUE  RW  0x12345678 after reset, then what was last written
// Other offsets answer with pslverr (the device logs a guest error; reads give 0).
// Every transfer completes in its first access cycle (pready is always 1).
module @ID@ (
    input  wire        clk,
    input  wire        rst_n,

    input  wire        psel,
    input  wire        penable,
    input  wire        pwrite,
    input  wire [7:0]  paddr,
    input  wire [31:0] pwdata,
    output wire [31:0] prdata,
    output wire        pready,
    output wire        pslverr
);
    localparam [7:0]  A_VALUE     = 8'h00;
    localparam [31:0] VALUE_RESET = 32'h12345678;

    reg [31:0] value;
    wire hit = paddr == A_VALUE;

    assign pready  = 1'b1;
    assign pslverr = psel && penable && !hit;
    assign prdata  = hit ? value : 32'h0;

    always @(posedge clk) begin
        if (!rst_n)
            value <= VALUE_RESET;
        else if (psel && penable && pwrite && hit)
            value <= pwdata;
    end
endmodule
