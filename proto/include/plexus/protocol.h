/*
 * The plexus device protocol's constants, shared by the hub and the SDK (docs/protocol.md): its version, the
 * capability bits of Hello, the limits both sides enforce, the layouts of the shared pages (shadow page, state
 * block) and the names of the sandbox policies. Plain C with no dependencies: a device in another language
 * reads its numbers from here or from docs/protocol.md.
 *
 * The message encoders and decoders are in plexus/wire.h, the transports in plexus/chan.h, the handshake's
 * side channel (descriptor passing, attach requests) in plexus/handshake.h.
 */
#ifndef PLEXUS_PROTOCOL_H
#define PLEXUS_PROTOCOL_H

#include <stdint.h>

/* ---- version (Hello.major / Hello.minor): majors must match; the minor used is the smaller of the two ---- */
#define PLX_PROTOCOL_MAJOR 1
#define PLX_PROTOCOL_MINOR 2

/* ---- capability bits (Hello.capabilities; the values of enum plx.Capability) ----------------------------- */
#define PLX_CAP_SHADOW 1u           /* understands SHADOW regions and the shadow page header */
#define PLX_CAP_RAM_FDS 2u          /* can map RAM from file descriptors */
#define PLX_CAP_DMA_MESSAGE 4u      /* can do DMA by message */
#define PLX_CAP_WRITE_BATCH 8u      /* accepts MmioWriteBatch */
#define PLX_CAP_TIMER_DONE 16u      /* answers every TimerFire with TimerDone once its callback returned */
#define PLX_CAP_RING 32u            /* can move to the shared-memory ring after the handshake */
#define PLX_CAP_LOCKSTEP 64u        /* answers TimeGrant with TimeReached */
#define PLX_CAP_DMA_WRITTEN 128u    /* hub: takes DmaWritten reports; device: sends them */
#define PLX_CAP_SYNC 256u           /* answers Sync with MmioReply once everything sent before it is handled */
#define PLX_CAP_WRITE_TIMES 512u    /* takes each batched write's own virtual time (MmioWrite.at_ns) */
#define PLX_CAP_CONSOLE 1024u       /* hub: carries the machine's console; device: can be it */
/* What the hub offers in its Hello. */
#define PLX_CAPS_HUB (PLX_CAP_SHADOW | PLX_CAP_RAM_FDS | PLX_CAP_DMA_MESSAGE | PLX_CAP_WRITE_BATCH |             \
                      PLX_CAP_TIMER_DONE | PLX_CAP_RING | PLX_CAP_LOCKSTEP | PLX_CAP_DMA_WRITTEN | PLX_CAP_SYNC | \
                      PLX_CAP_WRITE_TIMES | PLX_CAP_CONSOLE)
/* What the C SDK offers (PLX_CAP_RING only with an fd socket to receive the ring on). */
#define PLX_CAPS_SDK (PLX_CAP_SHADOW | PLX_CAP_RAM_FDS | PLX_CAP_DMA_MESSAGE | PLX_CAP_WRITE_BATCH |             \
                      PLX_CAP_TIMER_DONE | PLX_CAP_LOCKSTEP | PLX_CAP_DMA_WRITTEN | PLX_CAP_SYNC |                \
                      PLX_CAP_WRITE_TIMES | PLX_CAP_CONSOLE)

/* ---- limits (a message past one is refused, and the device with it) --------------------------------------- */
#define PLX_MAX_FRAME (4u << 20)            /* bytes of one frame, on every transport */
#define PLX_MAX_DMA (1u << 20)              /* payload of one DmaRequest / DmaReply (Config.max_dma_len) */
#define PLX_MAX_REGIONS 64                  /* regions in one Declare */
#define PLX_MAX_IRQS 1024                   /* IRQ lines in one Declare */
#define PLX_MAX_PROPS 256                   /* properties in one Declare */
#define PLX_MAX_READ_THROUGH 64             /* read-through ranges of one SHADOW region */
#define PLX_MAX_REGION_SIZE (UINT64_C(1) << 40)
#define PLX_MAX_NAME 128                    /* bytes of a region, IRQ line, property or device name */
#define PLX_MAX_TIMERS 256                  /* timer ids 0..PLX_MAX_TIMERS-1 */
#define PLX_MAX_PASSED_FDS 253              /* descriptors in one SCM_RIGHTS message (Config.n_passed_fds) */
#define PLX_ZMQ_HWM 16                      /* frames ZeroMQ queues each way before a sender waits (both sides) */
#define PLX_MAX_BUSY_NS 1000000u            /* MmioReply.busy_ns the hub charges at most (lockstep) */
#define PLX_MAX_FILES 16                    /* files given to one device (Config.files) */
#define PLX_MAX_DMA_RANGES 64               /* ranges in one DmaWritten */

/* ---- liveness of a ZeroMQ connection across hosts (tcp://): ZMTP heartbeats both sides enable -------------- */
#define PLX_HEARTBEAT_IVL_MS 1000           /* a PING when nothing else was sent for this long */
#define PLX_HEARTBEAT_TIMEOUT_MS 5000       /* a connection silent for this long is closed (its peer is gone) */

/* ---- shadow page: header at offset 0 of every shadow mapping (docs/protocol.md, "Shadow pages") ------------ */
#define PLX_SHADOW_MAGIC 0x53584c50u   /* "PLXS" little-endian */
#define PLX_SHADOW_VERSION 1u
#define PLX_SHADOW_HEADER_SIZE 4096u
struct plx_shadow_header {
    uint32_t magic;
    uint32_t version;
    uint64_t applied_seq;   /* device: seq of the last MmioWrite it applied (release store) */
    uint64_t region_size;   /* hub: bytes of register image after the header */
};

/*
 * ---- device state block (docs/reliability.md) ----
 * A memfd the hub creates for each device it spawns and keeps across restarts, so a restarted device resumes
 * with what the guest had programmed. The hub passes it as PLEXUS_STATE_FD (PLX_STATE_BLOCK_SIZE bytes, size
 * sealed); the SDK maps it, keeps applied_seq current and hands the bytes after the header to the device.
 */
#define PLX_STATE_MAGIC 0x54534c50u    /* "PLST" little-endian */
#define PLX_STATE_VERSION 1u
#define PLX_STATE_HEADER_SIZE 64u
#define PLX_STATE_BLOCK_SIZE (64u << 10)
struct plx_state_header {
    uint32_t magic;         /* device: set when it claims the block */
    uint32_t version;
    uint64_t size;          /* device: bytes of device state after the header */
    uint64_t applied_seq;   /* device: seq of the last MmioWrite it applied; the hub zeroes it for a new process */
    uint64_t incarnation;   /* hub: 0 for the first process, +1 for each restart */
    uint64_t applying_seq;  /* device: seq of the MmioWrite whose callback runs (stored before it is called);
                             * above applied_seq when the process died inside that callback */
};

/* ---- sandbox policies (Config.sandbox.policy; machine files say `sandbox: {policy: NAME}`) ----------------- */
#define PLX_SANDBOX_POLICY_DEFAULT "default"    /* what the SDK's run loop needs; "" means the same */
#define PLX_SANDBOX_POLICY_LOG "log"            /* the same list, but a call outside it is logged, not fatal */
#define PLX_SANDBOX_POLICY_NAMES PLX_SANDBOX_POLICY_DEFAULT ", " PLX_SANDBOX_POLICY_LOG

/* ---- log levels (Log.level; syslog numbering) ---------------------------------------------------------------- */
enum plx_log_level { PLX_LOG_ERR = 3, PLX_LOG_WARNING = 4, PLX_LOG_NOTICE = 5, PLX_LOG_INFO = 6, PLX_LOG_DEBUG = 7 };
/* "error", "warning", ... for a level; "log" for one outside 0..7. */
static inline const char *plx_log_level_name(int level)
{
    static const char *const names[] = { "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" };
    return level >= 0 && level < 8 ? names[level] : "log";
}

/* ---- environment of a device the hub spawns (docs/protocol.md, "Starting a device") ------------------------ */
#define PLX_ENV_ENDPOINT "PLEXUS_ENDPOINT"          /* the channel to connect to */
#define PLX_ENV_DEVICE_NAME "PLEXUS_DEVICE_NAME"    /* its name in the machine description */
#define PLX_ENV_FD_SOCKET "PLEXUS_FD_SOCKET"        /* inherited fd of the handshake's descriptor socket */
#define PLX_ENV_STATE_FD "PLEXUS_STATE_FD"          /* inherited fd of the state block */
#define PLX_ENV_ATTACH "PLEXUS_ATTACH"              /* attach mode: the hub's attach socket */
#define PLX_ENV_ATTACH_KEY "PLEXUS_ATTACH_KEY"      /* attach mode: the device's key (else read from its file) */
#define PLX_ENV_CURVE_SECRET "PLEXUS_CURVE_SECRET"  /* tcp: the device's CURVE secret key (Z85) */
#define PLX_ENV_CURVE_SERVER "PLEXUS_CURVE_SERVER"  /* tcp: the hub's CURVE public key (Z85) */

/* ---- attach (docs/protocol.md, "Attach socket") --------------------------------------------------------------- */
#define PLX_ATTACH_KEY_LEN 64u      /* hex digits of a device's attach key (32 random bytes) */
#define PLX_ATTACH_KEY_SUFFIX ".key" /* the hub writes NAME.key (0600) next to its attach socket */

#endif
