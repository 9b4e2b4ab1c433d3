/* What the hub sends, and the loops that receive it: plx_dev_main()'s own, and one the caller runs
 * (plx_dev_open / plx_dev_get_poll_fd / plx_dev_dispatch / plx_dev_close). */
#define _GNU_SOURCE
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- MMIO ------------------------------------------------------------------------------------------------ */

static bool access_ok(plx_dev *dev, uint32_t region, uint64_t addr, uint32_t size)
{
    if (region >= dev->ops->n_regions)
        return false;
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return false;
    uint64_t rsize = dev->ops->regions[region].size;
    return addr < rsize && size <= rsize - addr;
}

static void reply(plx_dev *dev, uint64_t seq, uint64_t data, Plx__MemTx result)
{
    Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
    rp.seq = seq;
    rp.data = data;
    rp.result = result;
    rp.busy_ns = dev->access_busy;
    dev->access_busy = 0;
    if (dev->lockstep)
        rp.next_event_ns = dev->next_event;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_REPLY;
    env.reply = &rp;
    sdk_send_env(dev, &env);
}

static void mmio_read(plx_dev *dev, const Plx__MmioRead *rd)
{
    uint64_t seq = rd->seq;
    dev->access_busy = 0;
    dev->access_result = PLX_ACCESS_OK;
    if (!access_ok(dev, rd->region, rd->addr, rd->size)) {
        plx_log(dev, PLX_LOG_WARNING, "read of %u bytes at 0x%" PRIx64 " outside region %u", rd->size, rd->addr,
                rd->region);
        reply(dev, seq, UINT64_MAX, PLX__MEM_TX__MEMTX_DECODE_ERROR);
        return;
    }
    const plx_region_ops *ops = dev->ops->regions[rd->region].ops;
    uint32_t size = rd->size;
    uint64_t addr = rd->addr;
    /* The callback may DMA by message, which reuses the decode arena: nothing of *rd is used after it. */
    uint64_t v = ops && ops->read ? ops->read(dev->opaque, addr, size) : 0;
    if (size < 8)
        v &= (UINT64_C(1) << (8 * size)) - 1;
    reply(dev, seq, v, (Plx__MemTx)dev->access_result);
}

static void mmio_write(plx_dev *dev, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size, uint64_t data,
                       bool posted)
{
    dev->access_busy = 0;
    dev->access_result = PLX_ACCESS_OK;
    if (!access_ok(dev, region, addr, size)) {
        plx_log(dev, PLX_LOG_WARNING, "write of %u bytes at 0x%" PRIx64 " outside region %u", size, addr, region);
        sdk_publish_applied(dev, seq);
        if (!posted)
            reply(dev, seq, 0, PLX__MEM_TX__MEMTX_DECODE_ERROR);
        return;
    }
    const plx_region_ops *ops = dev->ops->regions[region].ops;
    if (size < 8)
        data &= (UINT64_C(1) << (8 * size)) - 1;
    if (dev->state_hdr)
        __atomic_store_n(&dev->state_hdr->applying_seq, seq, __ATOMIC_RELEASE);
    if (ops && ops->write)
        ops->write(dev->opaque, addr, data, size);
    sdk_publish_applied(dev, seq);
    if (!posted)
        reply(dev, seq, 0, (Plx__MemTx)dev->access_result);
}

void sdk_handle_env(plx_dev *dev, Plx__Envelope *env)
{
    if (env->now_ns > dev->now)
        dev->now = env->now_ns;
    switch (env->msg_case) {
    case PLX__ENVELOPE__MSG_READ:
        mmio_read(dev, env->read);
        break;
    case PLX__ENVELOPE__MSG_WRITE: {
        const Plx__MmioWrite *w = env->write;
        mmio_write(dev, w->seq, w->region, w->addr, w->size, w->data, w->posted);
        break;
    }
    case PLX__ENVELOPE__MSG_WRITE_BATCH: {
        /* Copy first: a write callback may DMA by message, which reuses the decode arena. */
        size_t n = env->write_batch->n_writes;
        if (n > dev->batch_cap) {
            struct batched *b = realloc(dev->batch, sizeof(*b) * n);
            if (!b)
                break;
            dev->batch = b;
            dev->batch_cap = n;
        }
        for (size_t i = 0; i < n; i++) {
            const Plx__MmioWrite *w = env->write_batch->writes[i];
            dev->batch[i] = (struct batched){ w->seq, w->addr, w->data, w->at_ns, w->region, w->size };
        }
        for (size_t i = 0; i < n && !dev->stop; i++) {
            struct batched *b = &dev->batch[i];
            if (b->at_ns > dev->now)
                dev->now = b->at_ns;    /* the time of the guest's instruction that made this write */
            mmio_write(dev, b->seq, b->region, b->addr, b->size, b->data, true);
        }
        break;
    }
    case PLX__ENVELOPE__MSG_SYNC:
        /* Everything before it is handled, and what that sent (IRQ changes) is on the channel ahead of this. */
        reply(dev, env->sync->seq, 0, PLX__MEM_TX__MEMTX_OK);
        break;
    case PLX__ENVELOPE__MSG_TIMER_FIRE: {
        Plx__TimerFire f = *env->timer_fire;
        sdk_timer_fire(dev, &f);
        if (f.seq) {
            sdk_publish_applied(dev, f.seq);
            Plx__TimerDone td = PLX__TIMER_DONE__INIT;
            td.seq = f.seq;
            Plx__Envelope out = PLX__ENVELOPE__INIT;
            out.msg_case = PLX__ENVELOPE__MSG_TIMER_DONE;
            out.timer_done = &td;
            sdk_send_env(dev, &out);
        }
        break;
    }
    case PLX__ENVELOPE__MSG_RESET: {
        uint64_t seq = env->reset->seq;
        for (unsigned i = 0; i < dev->ops->n_irqs; i++)
            dev->irq_level[i] = -1;
        if (dev->ops->reset)
            dev->ops->reset(dev->opaque);
        if (seq)
            sdk_publish_applied(dev, seq);
        break;
    }
    case PLX__ENVELOPE__MSG_SHUTDOWN:
        plx_dev_stop(dev, 0);
        break;
    case PLX__ENVELOPE__MSG_TIME_GRANT:
        sdk_time_grant(dev, env->time_grant->until_ns);
        break;
    case PLX__ENVELOPE__MSG_CONSOLE_INPUT:
        if (dev->console && dev->console_cb)
            dev->console_cb(dev->console_opaque, env->console_input->data.data, env->console_input->data.len);
        break;
    case PLX__ENVELOPE__MSG_ERROR:
        sdk_log(dev, PLX_LOG_ERR, "hub reports: %s", env->error->text ? env->error->text : "");
        break;
    default:
        plx_log(dev, PLX_LOG_WARNING, "unexpected %s message from the hub ignored",
                plx_wire_msg_name(env->msg_case));
        break;
    }
    sdk_dma_flush(dev);     /* what the callbacks wrote into guest RAM */
}

int sdk_serve_socket(plx_dev *dev)
{
    for (;;) {
        while (dev->pend_head && !dev->stop) {
            struct pending *p = dev->pend_head;
            dev->pend_head = p->next;
            if (!dev->pend_head)
                dev->pend_tail = NULL;
            Plx__Envelope *env;
            if (plx_wire_decode(&dev->wire, p->data, p->len, &env) == 0) {
                sdk_handle_env(dev, env);
                plx_wire_release(&dev->wire);
            }
            free(p);
        }
        if (dev->stop)
            return 0;
        Plx__Envelope *env;
        int r = plx_wire_recv(&dev->wire, &env, 0);
        if (r == -EAGAIN)
            return 0;
        if (r == -EBADMSG) {
            plx_log(dev, PLX_LOG_WARNING, "undecodable frame from the hub dropped");
            continue;
        }
        if (r == -EINTR)
            continue;
        if (r < 0)
            return r;
        sdk_handle_env(dev, env);
        plx_wire_release(&dev->wire);
    }
}

/* True if the connection to the hub is gone: the ring's fd socket hung up, or ZeroMQ saw it disconnect. */
bool sdk_hub_gone(plx_dev *dev)
{
    if (dev->ring && dev->fdsock < 0)
        return true;
    return plx_chan_peer_gone(dev->chan);
}

/* The callback watching @fd, if it still does (watches may change from inside callbacks), then the DMA it
 * reported goes out. */
static void call_watch(plx_dev *dev, int fd)
{
    for (unsigned j = 0; j < dev->n_watches; j++) {
        if (dev->watches[j].fd == fd) {
            dev->watches[j].cb(dev->watches[j].opaque, fd);
            sdk_dma_flush(dev);
            return;
        }
    }
}

int sdk_run_loop(plx_dev *dev)
{
    while (!dev->stop) {
        if (dev->pend_head) {
            if (sdk_serve_socket(dev) < 0)
                return -EIO;
            continue;
        }
        if (dev->n_watches == 0) {
            /* Only the hub to listen to: block in the receive itself, as cheap as a round trip gets. The
             * receive timeout (RECV_IDLE_MS) lets the idle loop notice a hub that went away. */
            Plx__Envelope *env;
            int r = plx_wire_recv(&dev->wire, &env, RECV_IDLE_MS);
            if (r == 0) {
                sdk_handle_env(dev, env);
                plx_wire_release(&dev->wire);
                if (sdk_serve_socket(dev) < 0)
                    return -EIO;
            } else if (r == -EAGAIN) {
                if (sdk_hub_gone(dev))
                    return -ECONNRESET;
            } else if (r == -EPIPE) {
                return -ECONNRESET;
            } else if (r == -EBADMSG) {
                plx_log(dev, PLX_LOG_WARNING, "undecodable frame from the hub dropped");
            } else if (r != -EINTR) {
                return -EIO;
            }
            continue;
        }
        unsigned n = 1 + dev->n_watches;
        if (n > dev->cap_items) {
            struct pollfd *it = realloc(dev->items, sizeof(*it) * n);
            if (!it)
                return -ENOMEM;
            dev->items = it;
            dev->cap_items = n;
        }
        /* On the ring, the next request usually comes within the spin budget: look for it before sleeping in a
         * poll that a bell would have to end (the watched descriptors wait that long at most). */
        bool have = dev->ring && plx_chan_spin(dev->chan) != 0;
        dev->items[0] = (struct pollfd){ .fd = plx_chan_poll_fd(dev->chan), .events = POLLIN };
        have |= plx_chan_poll_prepare(dev->chan);
        for (unsigned i = 0; i < dev->n_watches; i++)
            dev->items[1 + i] = (struct pollfd){ .fd = dev->watches[i].fd, .events = POLLIN };
        /* Whether the hub is gone is looked at when the loop is idle, not on every wake-up (latency). */
        int ready = poll(dev->items, n, have ? 0 : RECV_IDLE_MS);
        int e = errno;
        bool frame = plx_chan_poll_done(dev->chan, ready > 0 ? dev->items[0].revents : 0);
        dev->items[0].revents = 0;
        if (have || frame) {
            dev->items[0].revents = POLLIN;
            ready = ready < 0 ? 1 : ready + 1;
        }
        if (ready < 0) {
            if (e == EINTR)
                continue;
            return -EIO;
        }
        if (ready == 0) {
            if (sdk_hub_gone(dev))
                return -ECONNRESET;
            continue;
        }
        if (dev->items[0].revents & POLLIN)
            if (sdk_serve_socket(dev) < 0)
                return -EIO;
        /* Watches may change from inside callbacks: look each fd up again before calling it. */
        for (unsigned i = 1; i < n && !dev->stop; i++) {
            if (!(dev->items[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            call_watch(dev, dev->items[i].fd);
        }
    }
    return 0;
}

/* ---- a run loop owned by the caller ---------------------------------------------------------------------- */


int sdk_watch_add(plx_dev *dev, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

PLX_EXPORT plx_dev *
plx_dev_open(const plx_device_ops *ops, int argc, char **argv)
{
    if (sdk_validate_ops(ops) < 0)
        return NULL;
    plx_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    *dev = (plx_dev){ .ops = ops, .fdsock = -1, .epfd = -1, .kickfd = -1, .next_event = PLX_NEVER, .heap = true };
    /* Created before the handshake: a sandbox the machine asks for goes on at its end, and allows neither. */
    dev->epfd = epoll_create1(EPOLL_CLOEXEC);
    dev->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dev->epfd < 0 || dev->kickfd < 0 || sdk_watch_add(dev, dev->kickfd) < 0) {
        sdk_log(dev, PLX_LOG_ERR, "cannot set up the poll descriptor: %s", strerror(errno));
        goto fail;
    }
    if (sdk_dev_setup(dev, argc, argv) < 0)
        goto fail;
    int chan_fd = plx_chan_poll_fd(dev->chan), peer_fd = plx_chan_peer_poll_fd(dev->chan);
    if (chan_fd < 0 || sdk_watch_add(dev, chan_fd) < 0 || (peer_fd >= 0 && sdk_watch_add(dev, peer_fd) < 0)) {
        sdk_send_error(dev, EIO, "cannot set up the poll descriptor: %s", strerror(errno));
        goto fail;
    }
    sdk_arm(dev);
    return dev;
fail:
    sdk_dev_finish(dev, 1);
    return NULL;
}

PLX_EXPORT int
plx_dev_get_poll_fd(plx_dev *dev)
{
    return dev->epfd;
}

/* Make the poll descriptor readable: there is work (a frame already in the ring, frames kept during DMA). */
static void kick(plx_dev *dev)
{
    uint64_t one = 1;
    if (write(dev->kickfd, &one, sizeof(one)) < 0) {
        /* the counter is already non-zero: readable anyway */
    }
}

/* Before the caller waits: the channel is armed (a ring side says it sleeps, so the next frame rings its bell),
 * and if work is already there the descriptor is made readable at once. */
void sdk_arm(plx_dev *dev)
{
    if (plx_chan_poll_prepare(dev->chan) || dev->pend_head)
        kick(dev);
}

PLX_EXPORT int
plx_dev_dispatch(plx_dev *dev, int timeout_ms)
{
    struct epoll_event evs[16];
    int chan_fd = plx_chan_poll_fd(dev->chan), peer_fd = plx_chan_peer_poll_fd(dev->chan);
    /* A caller willing to wait, on the ring: the next request usually comes within the ring's spin budget (what
     * plx_dev_main()'s loop finds), and spinning for it spares this side a wake-up. With a frame there and no
     * watched descriptor there is nothing else to look at: no system call at all, as in plx_dev_main()'s loop. */
    bool spun = false;
    int n = 0;
    if (timeout_ms != 0 && dev->ring && !dev->pend_head) {
        plx_chan_poll_done(dev->chan, 0);       /* the arm of the previous call: awake while spinning */
        spun = plx_chan_spin(dev->chan) != 0;
        if (spun || plx_chan_poll_prepare(dev->chan))
            timeout_ms = 0;
    }
    if (!spun || dev->n_watches)
        n = epoll_wait(dev->epfd, evs, 16, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -EIO;
    short chan_rev = 0;
    bool peer = false;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == chan_fd) {
            chan_rev = POLLIN;
        } else if (fd == dev->kickfd) {
            uint64_t v;
            if (read(dev->kickfd, &v, sizeof(v)) < 0) {
                /* taken already */
            }
        } else if (fd == peer_fd) {
            peer = true;
        }
    }
    plx_chan_poll_done(dev->chan, chan_rev);       /* the arm() of the previous call, or of plx_dev_open() */
    /* Whatever the descriptor said, take what the channel holds: a receive that finds nothing is cheap. */
    if (sdk_serve_socket(dev) < 0) {
        dev->connected = false;
        return -ECONNRESET;
    }
    /* Watches may change from inside callbacks: look each fd up again before calling it. */
    for (int i = 0; i < n && !dev->stop; i++) {
        int fd = evs[i].data.fd;
        if (fd != chan_fd && fd != peer_fd && fd != dev->kickfd)
            call_watch(dev, fd);
    }
    if (dev->stop)
        return 1;
    if ((peer || (n <= 0 && !spun)) && sdk_hub_gone(dev)) {
        dev->connected = false;
        return -ECONNRESET;
    }
    sdk_arm(dev);
    return 0;
}

PLX_EXPORT int
plx_dev_close(plx_dev *dev)
{
    if (!dev)
        return 0;
    int status = dev->stop ? dev->status : 0;
    sdk_dev_finish(dev, status);
    return status;
}

