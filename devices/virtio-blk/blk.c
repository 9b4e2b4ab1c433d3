/*
 * virtio block device (virtio 1.x device ID 2) backed by a raw disk image: reads and writes go straight between
 * the image and guest RAM (preadv/pwritev on the mapped buffers), on I/O threads so that several requests are in
 * flight; flush is fdatasync; discard and write-zeroes punch or zero ranges. A request is acknowledged only after
 * its data reached the image file (the host's page cache), so a device process that dies loses no acknowledged
 * write. Built into the plexus-virtio-blk program (main.c) and the plexus-virtio-blk.so plugin.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <plexus/virtio.h>

#include "blk.h"

/* Feature bits and request types (virtio 1.x, "Block Device"). */
#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_DISCARD 13
#define F_WRITE_ZEROES 14

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13

#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define SECTOR 512u
#define QUEUE_SIZE 256u
#define SEG_MAX (QUEUE_SIZE - 2)    /* a chain also holds the header and the status byte */
#define DISCARD_SEG_MAX 32u
#define ID_BYTES 20u

struct blk_config {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads, sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp, alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback, unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
} __attribute__((packed));

struct range {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
} __attribute__((packed));

/* One request on its way through an I/O thread. */
struct job {
    struct job *next;
    plx_virtio_req *req;
    uint32_t type;
    uint64_t offset;            /* bytes into the image */
    size_t len;                 /* data bytes */
    unsigned n_iov;
    struct iovec *iov;          /* the data buffers (the header and status byte cut off) */
    uint8_t status;
};

typedef struct blk {
    plx_virtio *vio;
    plx_dev *dev;
    int fd;
    bool readonly, discard;
    uint64_t sectors;
    char id[ID_BYTES];

    unsigned n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t work, finished;
    struct job *todo, *todo_tail, *done;
    unsigned busy;              /* jobs queued or running */
    bool stop;
    int done_fd;                /* eventfd: finished jobs are waiting for the run loop */
} blk;

/* ---- the I/O itself (any thread) ---------------------------------------------------------------------------- */

/*
 * Read or write what is left of the job's data, advancing its iovecs and offset as bytes move (so a transfer
 * stopped part way continues where it was). @flags RWF_NOWAIT: only what the page cache can serve at once.
 * Returns 0 when all is done, -EAGAIN (or -EOPNOTSUPP) when RWF_NOWAIT would have to wait, or -errno.
 */
static int transfer(blk *b, struct job *j, int flags)
{
    bool write = j->type == T_OUT;
    while (j->n_iov) {
        ssize_t r = write ? pwritev2(b->fd, j->iov, (int)j->n_iov, (off_t)j->offset, flags)
                          : preadv2(b->fd, j->iov, (int)j->n_iov, (off_t)j->offset, flags);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return flags ? -EAGAIN : -EIO;      /* the image shrank under the disk */
        j->offset += (uint64_t)r;
        while (j->n_iov && (size_t)r >= j->iov->iov_len) {
            r -= (ssize_t)j->iov->iov_len;
            j->iov++;
            j->n_iov--;
        }
        if (j->n_iov) {
            j->iov->iov_base = (uint8_t *)j->iov->iov_base + r;
            j->iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

static uint8_t do_ranges(blk *b, struct job *j)
{
    struct range r[DISCARD_SEG_MAX];
    unsigned n = (unsigned)(j->len / sizeof(r[0]));
    size_t got = 0;
    for (unsigned i = 0; i < j->n_iov; i++) {
        memcpy((uint8_t *)r + got, j->iov[i].iov_base, j->iov[i].iov_len);
        got += j->iov[i].iov_len;
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t sector = le64toh(r[i].sector), count = le32toh(r[i].num_sectors);
        uint32_t flags = le32toh(r[i].flags);
        if (flags & ~1u || (j->type == T_DISCARD && flags))
            return S_UNSUPP;
        if (sector > b->sectors || count > b->sectors - sector)
            return S_IOERR;
        int mode = j->type == T_DISCARD ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
        if (count && fallocate(b->fd, mode, (off_t)(sector * SECTOR), (off_t)(count * SECTOR)) < 0) {
            if (j->type == T_DISCARD && errno == EOPNOTSUPP)
                continue;   /* discarding is advice: a file system that cannot punch keeps the data */
            return S_IOERR;
        }
    }
    return S_OK;
}

static void run_job(blk *b, struct job *j)
{
    switch (j->type) {
    case T_IN:
    case T_OUT:
        j->status = transfer(b, j, 0) < 0 ? S_IOERR : S_OK;
        break;
    case T_FLUSH:
        j->status = b->readonly || fdatasync(b->fd) == 0 ? S_OK : S_IOERR;
        break;
    default:
        j->status = do_ranges(b, j);
        break;
    }
}

static void *io_thread(void *opaque)
{
    blk *b = opaque;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->todo && !b->stop)
            pthread_cond_wait(&b->work, &b->lock);
        if (b->stop)
            break;
        struct job *j = b->todo;
        b->todo = j->next;
        if (!b->todo)
            b->todo_tail = NULL;
        pthread_mutex_unlock(&b->lock);
        run_job(b, j);
        pthread_mutex_lock(&b->lock);
        j->next = b->done;
        b->done = j;
        pthread_cond_broadcast(&b->finished);
        uint64_t one = 1;
        if (write(b->done_fd, &one, sizeof(one)) < 0)
            (void)0;    /* the counter cannot overflow in practice; the run loop drains the list anyway */
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- requests (run loop) ------------------------------------------------------------------------------------ */

static void finish(plx_virtio_req *req, uint8_t status, uint32_t data_written)
{
    plx_virtio_req_write(req, req->in_len - 1, &status, 1);
    plx_virtio_complete(req, data_written + 1);
}

static void finish_job(blk *b, struct job *j)
{
    finish(j->req, j->status, j->type == T_IN && j->status == S_OK ? (uint32_t)j->len : 0);
    free(j);
}

static void on_done(void *opaque, int fd)
{
    blk *b = opaque;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0)
        (void)0;    /* EAGAIN: another turn already took the count; the list says what is done */
    pthread_mutex_lock(&b->lock);
    struct job *j = b->done;
    b->done = NULL;
    pthread_mutex_unlock(&b->lock);
    /* The list is newest first: complete in the order the threads finished. */
    struct job *rev = NULL;
    while (j) {
        struct job *next = j->next;
        j->next = rev;
        rev = j;
        j = next;
    }
    unsigned finished = 0;
    while (rev) {
        struct job *next = rev->next;
        finish_job(b, rev);
        finished++;
        rev = next;
    }
    pthread_mutex_lock(&b->lock);
    b->busy -= finished;
    pthread_mutex_unlock(&b->lock);
}

/* The @len bytes after the first @skip bytes of @src, as iovecs in @dst (room for @n). Returns their count. */
static unsigned slice(const struct iovec *src, unsigned n, size_t skip, size_t len, struct iovec *dst)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len; i++) {
        size_t l = src[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t take = l - skip < len ? l - skip : len;
        dst[k++] = (struct iovec){ .iov_base = (uint8_t *)src[i].iov_base + skip, .iov_len = take };
        len -= take;
        skip = 0;
    }
    return k;
}

/* Reads and writes the page cache can serve are done at once, here (no thread hand-off on the way to the
 * interrupt); the rest, flushes and discards go to the I/O threads, several at a time. */
static void submit(blk *b, struct job *j)
{
    if (!b->n_threads) {
        run_job(b, j);
        finish_job(b, j);
        return;
    }
    if (j->type == T_IN || j->type == T_OUT) {
        int r = transfer(b, j, RWF_NOWAIT);
        if (r == 0 || (r != -EAGAIN && r != -EOPNOTSUPP)) {
            j->status = r == 0 ? S_OK : S_IOERR;
            finish_job(b, j);
            return;
        }
    }
    pthread_mutex_lock(&b->lock);
    j->next = NULL;
    if (b->todo_tail)
        b->todo_tail->next = j;
    else
        b->todo = j;
    b->todo_tail = j;
    b->busy++;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
}

static void blk_request(void *opaque, plx_virtio_req *req)
{
    blk *b = opaque;
    struct { uint32_t type, reserved; uint64_t sector; } hdr;
    if (plx_virtio_req_read(req, 0, &hdr, sizeof(hdr)) < sizeof(hdr) || req->in_len < 1) {
        plx_virtio_needs_reset(b->vio, "virtio-blk: request without its 16-byte header or status byte");
        plx_virtio_complete(req, 0);    /* dropped: the device stopped */
        return;
    }
    uint32_t type = le32toh(hdr.type);
    uint64_t sector = le64toh(hdr.sector);
    size_t len = 0;
    const struct iovec *src = NULL;
    unsigned n_src = 0;
    size_t skip = 0;

    switch (type) {
    case T_IN:
        len = req->in_len - 1;
        src = req->in, n_src = req->n_in;
        break;
    case T_OUT:
        if (b->readonly) {
            finish(req, S_IOERR, 0);
            return;
        }
        len = req->out_len - sizeof(hdr);
        src = req->out, n_src = req->n_out, skip = sizeof(hdr);
        break;
    case T_FLUSH:
        break;
    case T_GET_ID: {
        size_t n = req->in_len - 1 < ID_BYTES ? req->in_len - 1 : ID_BYTES;
        plx_virtio_req_write(req, 0, b->id, n);
        finish(req, S_OK, (uint32_t)n);
        return;
    }
    case T_DISCARD:
    case T_WRITE_ZEROES:
        len = req->out_len - sizeof(hdr);
        if (b->readonly || !b->discard || len % sizeof(struct range) || len / sizeof(struct range) > DISCARD_SEG_MAX) {
            finish(req, b->readonly ? S_IOERR : S_UNSUPP, 0);
            return;
        }
        src = req->out, n_src = req->n_out, skip = sizeof(hdr);
        break;
    default:
        finish(req, S_UNSUPP, 0);
        return;
    }
    if ((type == T_IN || type == T_OUT) &&
        (len % SECTOR || sector > b->sectors || len / SECTOR > b->sectors - sector)) {
        finish(req, S_IOERR, 0);
        return;
    }
    struct job *j = calloc(1, sizeof(*j) + (n_src ? n_src : 1) * sizeof(struct iovec));
    if (!j) {
        finish(req, S_IOERR, 0);
        return;
    }
    j->req = req;
    j->type = type;
    j->offset = sector * SECTOR;
    j->len = len;
    j->iov = (struct iovec *)(j + 1);
    j->n_iov = slice(src, n_src, skip, len, j->iov);
    submit(b, j);
}

/* The driver reset the device: what has not started never will; let the I/O in flight finish (it writes guest
 * RAM), then drop every result (the layer drops completions from before a reset). */
static void blk_reset(void *opaque)
{
    blk *b = opaque;
    pthread_mutex_lock(&b->lock);
    struct job *j = b->todo;
    b->todo = b->todo_tail = NULL;
    for (struct job *k = j; k; k = k->next)
        b->busy--;
    while (b->busy) {
        while (!b->done)
            pthread_cond_wait(&b->finished, &b->lock);
        pthread_mutex_unlock(&b->lock);
        on_done(b, b->done_fd);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    while (j) {
        struct job *next = j->next;
        plx_virtio_complete(j->req, 0);
        free(j);
        j = next;
    }
}

/* ---- set-up ------------------------------------------------------------------------------------------------- */

static const plx_prop_info props[] = {
    { "discard", "1", "1: accept discard and write-zeroes requests (punch holes in the image)" },
    { "io-threads", "2", "threads for the image's I/O that would wait for the disk (0: all on the run loop, one "
                         "request at a time)" },
    { "serial", "plexus-virtio-blk", "the disk's ID string (up to 20 bytes)" },
};

static void blk_fini(void *opaque)
{
    blk *b = opaque;
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < b->n_threads; i++)
        pthread_join(b->threads[i], NULL);
    free(b->threads);
    for (struct job *j = b->done, *next; j; j = next) {
        next = j->next;
        free(j);
    }
    for (struct job *j = b->todo, *next; j; j = next) {
        next = j->next;
        free(j);
    }
    if (b->done_fd >= 0)
        close(b->done_fd);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->finished);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* The disk is the file the machine gives as "disk" (the hub opened it: the device opens no path). */
static int take_image(blk *b)
{
    bool ro = false;
    int fd = plx_dev_file(b->dev, "disk", &ro);
    if (fd < 0) {
        plx_log(b->dev, PLX_LOG_ERR, "no disk image: give the device `files: [{name: disk, path: IMAGE}]` "
                "(readonly: true for a read-only disk)");
        return -EINVAL;
    }
    b->fd = fd;
    b->readonly = ro;
    return 0;
}

static int blk_init(plx_virtio *vio, void **opaque)
{
    plx_dev *dev = plx_virtio_dev(vio);
    uint64_t discard, threads;
    if (plx_dev_prop_u64(dev, "discard", &discard) < 0 || plx_dev_prop_u64(dev, "io-threads", &threads) < 0)
        return -EINVAL;
    if (discard > 1 || threads > 64) {
        plx_log(dev, PLX_LOG_ERR, "discard takes 0 or 1, io-threads 0..64");
        return -EINVAL;
    }
    blk *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->vio = vio;
    b->dev = dev;
    b->fd = b->done_fd = -1;
    b->discard = discard;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->finished, NULL);
    int r = take_image(b);
    struct stat st;
    if (r == 0 && fstat(b->fd, &st) < 0)
        r = -errno;
    if (r == 0 && (!S_ISREG(st.st_mode) || st.st_size < (off_t)SECTOR)) {
        plx_log(dev, PLX_LOG_ERR, "the disk image is not a regular file of at least %u bytes", SECTOR);
        r = -EINVAL;
    }
    if (r < 0) {
        blk_fini(b);
        return r;
    }
    if (st.st_size % SECTOR)
        plx_log(dev, PLX_LOG_WARNING, "the disk image's size is not a multiple of %u: its last %lld bytes are not "
                "part of the disk", SECTOR, (long long)(st.st_size % SECTOR));
    b->sectors = (uint64_t)st.st_size / SECTOR;
    const char *serial = plx_dev_prop(dev, "serial");     /* NUL-padded; no terminator at 20 bytes */
    memcpy(b->id, serial, strnlen(serial, sizeof(b->id)));

    b->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->done_fd < 0 || plx_dev_watch_fd(dev, b->done_fd, on_done, b) < 0) {
        blk_fini(b);
        return -ENOMEM;
    }
    b->threads = calloc(threads ? threads : 1, sizeof(pthread_t));
    if (!b->threads) {
        blk_fini(b);
        return -ENOMEM;
    }
    for (; b->n_threads < threads; b->n_threads++) {
        if ((r = pthread_create(&b->threads[b->n_threads], NULL, io_thread, b)) != 0) {
            plx_log(dev, PLX_LOG_ERR, "cannot start I/O threads: %s", strerror(r));
            blk_fini(b);
            return -r;
        }
    }

    struct blk_config *c = plx_virtio_config(vio);
    memset(c, 0, sizeof(*c));
    c->capacity = htole64(b->sectors);
    c->seg_max = htole32(SEG_MAX);
    c->blk_size = htole32(SECTOR);
    c->max_discard_sectors = c->max_write_zeroes_sectors = htole32(UINT32_MAX / SECTOR);
    c->max_discard_seg = c->max_write_zeroes_seg = htole32(DISCARD_SEG_MAX);
    c->discard_sector_alignment = htole32(1);
    plx_virtio_offer(vio, virtio_blk_ops.features | (b->readonly ? PLX_VIRTIO_F_BIT(F_RO) : 0) |
                              (b->discard && !b->readonly ? PLX_VIRTIO_F_BIT(F_DISCARD) |
                                                                PLX_VIRTIO_F_BIT(F_WRITE_ZEROES) : 0));
    *opaque = b;
    return 0;
}

const plx_virtio_ops virtio_blk_ops = {
    .version = PLX_VIRTIO_OPS_VERSION,
    .model = "plexus,virtio-blk",
    .device_id = PLX_VIRTIO_ID_BLOCK,
    .features = PLX_VIRTIO_F_BIT(F_SEG_MAX) | PLX_VIRTIO_F_BIT(F_BLK_SIZE) | PLX_VIRTIO_F_BIT(F_FLUSH),
    .n_queues = 1,
    .queue_size = QUEUE_SIZE,
    .config_size = sizeof(struct blk_config),
    .props = props,
    .n_props = sizeof(props) / sizeof(props[0]),
    .init = blk_init,
    .request = blk_request,
    .reset = blk_reset,
    .fini = blk_fini,
};

PLX_VIRTIO_DEVICE_DEFINE(&virtio_blk_ops);
