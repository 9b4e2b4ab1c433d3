/*
 * CRC-32 accelerator, C model: the register logic of the peripheral in devices/rtl-crc32/rtl/crc32_dma.v
 * (same register map, results, status and IRQ behaviour), without any transport. device.c wires it to the SDK.
 *
 * Register map (32-bit registers, offsets in bytes):
 *   0x00 ID      RO  0x43523332 ("CR32")
 *   0x04 CTRL    RW  bit0 START (write 1 to start; reads 0), bit1 IRQ_EN
 *   0x08 STATUS  RW  bit0 BUSY (RO), bit1 DONE (W1C), bit2 ERROR (W1C)
 *   0x0C SRC_LO / 0x10 SRC_HI  source byte address
 *   0x14 LEN     bytes
 *   0x18 SEED    CRC to continue from (0 for a fresh CRC), as zlib's crc32(seed, buf, len)
 *   0x1C RESULT  RO  CRC of the last completed operation
 * START latches SRC/LEN/SEED; START while BUSY is ignored and sets ERROR; LEN=0 completes at once with
 * RESULT=SEED; a DMA error ends the operation with ERROR set and RESULT unchanged. IRQ = IRQ_EN & (DONE|ERROR).
 * Offsets outside the map are bus errors (reads give 0, writes are dropped).
 *
 * Timing: an operation takes crc32_model_cycles() clock cycles, as the RTL does (one word fetch of
 * 1 + dma_latency cycles per 32-bit word touched, one cycle per byte), or ends with ERROR on the cycle the RTL
 * would get the failing word; it completes when crc32_model_advance() or an access sees virtual time at or past
 * that point. The model reads the memory at START (the RTL reads it word by word while it runs): the two differ
 * only if the guest changes the buffer during the operation.
 *
 * Single-threaded; the caller owns the struct.
 */
#ifndef PLEXUS_CRC32_MODEL_H
#define PLEXUS_CRC32_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRC32_ID 0x43523332u

enum {
    CRC32_REG_ID = 0x00,
    CRC32_REG_CTRL = 0x04,
    CRC32_REG_STATUS = 0x08,
    CRC32_REG_SRC_LO = 0x0C,
    CRC32_REG_SRC_HI = 0x10,
    CRC32_REG_LEN = 0x14,
    CRC32_REG_SEED = 0x18,
    CRC32_REG_RESULT = 0x1C,
};

#define CRC32_CTRL_START 0x1u
#define CRC32_CTRL_IRQ_EN 0x2u
#define CRC32_STATUS_BUSY 0x1u
#define CRC32_STATUS_DONE 0x2u
#define CRC32_STATUS_ERROR 0x4u

#define CRC32_NEVER UINT64_MAX

typedef struct crc32_model_hooks {
    /* Read guest memory: 0 or a negative errno. */
    int (*dma_read)(void *opaque, uint64_t addr, void *buf, size_t len);
    /* The IRQ output changed to @level. */
    void (*set_irq)(void *opaque, int level);
    /* Call crc32_model_advance() at virtual time @deadline_ns (CRC32_NEVER: no longer needed). */
    void (*arm)(void *opaque, uint64_t deadline_ns);
    void *opaque;
} crc32_model_hooks;

typedef struct crc32_model {
    crc32_model_hooks hooks;
    uint64_t clock_hz;
    unsigned dma_latency;
    /* registers */
    bool irq_en, done, error, busy;
    uint64_t src;
    uint32_t len, seed, result;
    /* the running operation */
    uint64_t op_src;
    uint32_t op_len, op_seed;
    uint32_t op_result;     /* its CRC, published at done_at */
    bool op_error;          /* it ends with a DMA error at done_at */
    uint64_t done_at;       /* virtual ns the operation completes; CRC32_NEVER when idle */
    int irq_level;
} crc32_model;

/* Clock cycles from the START edge to the edge that sets DONE, for @len > 0 bytes at @src. */
uint64_t crc32_model_cycles(uint64_t src, uint32_t len, unsigned dma_latency);

/* zlib-compatible CRC-32 continuing from @crc. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/* Initialise in the reset state. @clock_hz > 0. */
void crc32_model_init(crc32_model *m, const crc32_model_hooks *hooks, uint64_t clock_hz, unsigned dma_latency);
void crc32_model_reset(crc32_model *m);

/*
 * Register access at virtual time @now_ns; *@bus_error is set for offsets outside the map. Time is in edges, as
 * in the RTL: a read at t returns the state after the clock edge at t; a write at t takes effect on that edge,
 * together with a completion due on it (the write still sees BUSY; the completion's DONE wins over a W1C).
 */
uint32_t crc32_model_read(crc32_model *m, uint64_t now_ns, uint64_t offset, bool *bus_error);
void crc32_model_write(crc32_model *m, uint64_t now_ns, uint64_t offset, uint32_t value, bool *bus_error);

/* Virtual time reached @now_ns: complete the running operation if it is due. */
void crc32_model_advance(crc32_model *m, uint64_t now_ns);

#ifdef __cplusplus
}
#endif

#endif
