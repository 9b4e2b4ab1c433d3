/* Finding the hub, the handshake (docs/protocol.md), applying its Config, and tearing the device down. */
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

#include "plexus/handshake.h"
#include "sandbox.h"

/* ---- connection and handshake ---------------------------------------------------------------------------- */

static const char *arg_value(int argc, char **argv, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=')
            return argv[i] + kl + 1;
    return NULL;
}

/*
 * Attach mode: ask the hub's attach socket for our channel; the socket then stays open to carry the fds. The key
 * comes from PLEXUS_ATTACH_KEY, else from --plexus-key-file=, else from NAME.key next to the attach socket,
 * where the hub writes it.
 */
static int attach(plx_dev *dev, const char *path, const char *key_file, char *endpoint, size_t ep_len)
{
    if (!dev->name || !dev->name[0]) {
        sdk_log(dev, PLX_LOG_ERR, "attach needs the device name (--plexus-name= or " PLX_ENV_DEVICE_NAME ")");
        return -EINVAL;
    }
    const char *key = getenv(PLX_ENV_ATTACH_KEY);
    char *own = NULL;
    if (!key && !key_file) {
        const char *slash = strrchr(path, '/');
        if (asprintf(&own, "%.*s%s" PLX_ATTACH_KEY_SUFFIX, slash ? (int)(slash - path + 1) : 0, path, dev->name) < 0)
            return -ENOMEM;
        key_file = own;
    }
    char err[300];
    int r = plx_hs_attach(path, dev->name, key, key_file, 30000, endpoint, ep_len, &dev->fdsock, err, sizeof(err));
    if (r < 0)
        sdk_log(dev, PLX_LOG_ERR, "%s", err);
    unsetenv(PLX_ENV_ATTACH_KEY);
    free(own);
    return r;
}

static int fd_for(Plx__FdKind kind, int32_t num, const int *passed, unsigned n_passed, bool *owned)
{
    *owned = true;
    if (kind == PLX__FD_KIND__FD_INHERITED) {
        return num >= 0 ? num : -1;
    }
    if (kind == PLX__FD_KIND__FD_PASSED && num >= 0 && (unsigned)num < n_passed) {
        *owned = false;     /* closed with the batch */
        return passed[num];
    }
    return -1;
}

static int send_hello_declare(plx_dev *dev)
{
    const plx_device_ops *ops = dev->ops;
    Plx__Hello h;
    plx_hs_hello_init(&h, PLX_CAPS_SDK | (dev->fdsock >= 0 ? PLX_CAP_RING : 0), dev->name, ops->model);
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    if (sdk_send_env(dev, &env) < 0)
        return -EIO;

    Plx__RegionDecl *rd = calloc(ops->n_regions ? ops->n_regions : 1, sizeof(*rd));
    Plx__RegionDecl **rdp = calloc(ops->n_regions ? ops->n_regions : 1, sizeof(*rdp));
    Plx__AccessRules *ar = calloc(2 * (ops->n_regions ? ops->n_regions : 1), sizeof(*ar));
    unsigned n_rt = 0;
    for (unsigned i = 0; i < ops->n_regions; i++)
        n_rt += ops->regions[i].n_read_through;
    Plx__Range *rt = calloc(n_rt ? n_rt : 1, sizeof(*rt));
    Plx__Range **rtp = calloc(n_rt ? n_rt : 1, sizeof(*rtp));
    Plx__PropDecl *pd = calloc(ops->n_props ? ops->n_props : 1, sizeof(*pd));
    Plx__PropDecl **pdp = calloc(ops->n_props ? ops->n_props : 1, sizeof(*pdp));
    int ret = -ENOMEM;
    if (!rd || !rdp || !ar || !rt || !rtp || !pd || !pdp)
        goto out;
    unsigned k = 0;
    for (unsigned i = 0; i < ops->n_regions; i++) {
        const plx_region_info *ri = &ops->regions[i];
        plx__region_decl__init(&rd[i]);
        rd[i].name = (char *)(ri->name ? ri->name : "");
        rd[i].size = ri->size;
        rd[i].kind = (Plx__RegionKind)ri->kind;
        if (ri->ops) {
            rd[i].endianness = ri->ops->endianness == PLX_BIG_ENDIAN ? PLX__ENDIAN__BIG : PLX__ENDIAN__LITTLE;
            plx__access_rules__init(&ar[2 * i]);
            ar[2 * i].min_access_size = ri->ops->valid.min_access_size;
            ar[2 * i].max_access_size = ri->ops->valid.max_access_size;
            ar[2 * i].unaligned = ri->ops->valid.unaligned;
            plx__access_rules__init(&ar[2 * i + 1]);
            ar[2 * i + 1].min_access_size = ri->ops->impl.min_access_size;
            ar[2 * i + 1].max_access_size = ri->ops->impl.max_access_size;
            ar[2 * i + 1].unaligned = ri->ops->impl.unaligned;
            rd[i].valid = &ar[2 * i];
            rd[i].impl = &ar[2 * i + 1];
            rd[i].has_read = ri->ops->read != NULL;
            rd[i].has_write = ri->ops->write != NULL;
        }
        rd[i].read_through = &rtp[k];
        rd[i].n_read_through = ri->n_read_through;
        for (unsigned j = 0; j < ri->n_read_through; j++, k++) {
            plx__range__init(&rt[k]);
            rt[k].offset = ri->read_through[j].offset;
            rt[k].len = ri->read_through[j].len;
            rtp[k] = &rt[k];
        }
        rdp[i] = &rd[i];
    }
    for (unsigned i = 0; i < ops->n_props; i++) {
        plx__prop_decl__init(&pd[i]);
        pd[i].name = (char *)(ops->props[i].name ? ops->props[i].name : "");
        pd[i].has_default = ops->props[i].default_value != NULL;
        pd[i].default_value = (char *)(ops->props[i].default_value ? ops->props[i].default_value : "");
        pd[i].description = (char *)(ops->props[i].description ? ops->props[i].description : "");
        pdp[i] = &pd[i];
    }
    Plx__Declare d = PLX__DECLARE__INIT;
    if (ops->version >= 3 && ops->dt_node)
        d.dt_node = (char *)ops->dt_node;
    d.n_regions = ops->n_regions;
    d.regions = rdp;
    d.n_irqs = ops->n_irqs;
    d.irqs = (char **)ops->irq_names;
    d.n_props = ops->n_props;
    d.props = pdp;
    env.msg_case = PLX__ENVELOPE__MSG_DECLARE;
    env.declare = &d;
    ret = sdk_send_env(dev, &env) < 0 ? -EIO : 0;
out:
    free(rd);
    free(rdp);
    free(ar);
    free(rt);
    free(rtp);
    free(pd);
    free(pdp);
    return ret;
}

/* Wait for one envelope from the hub during the handshake. */
static int handshake_recv(plx_dev *dev, Plx__Envelope **out, Plx__Envelope__MsgCase want, int timeout_ms)
{
    Plx__Envelope *env;
    int r;
    do {
        r = plx_wire_recv(&dev->wire, &env, timeout_ms);
    } while (r == -EINTR);
    if (r == -EAGAIN || r == -EPIPE) {
        sdk_log(dev, PLX_LOG_ERR, "the hub did not answer the handshake");
        return -ETIMEDOUT;
    }
    if (r < 0) {
        sdk_log(dev, PLX_LOG_ERR, "bad handshake frame from the hub");
        return -EPROTO;
    }
    if (env->msg_case == PLX__ENVELOPE__MSG_ERROR) {
        sdk_log(dev, PLX_LOG_ERR, "hub refused the device: %s", env->error->text ? env->error->text : "");
        return -ECONNREFUSED;
    }
    if (env->msg_case != want) {
        sdk_log(dev, PLX_LOG_ERR, "expected %s from the hub, got %s", plx_wire_msg_name(want),
                plx_wire_msg_name(env->msg_case));
        return -EPROTO;
    }
    dev->now = env->now_ns;
    *out = env;
    return 0;
}

static int apply_config(plx_dev *dev, const Plx__Config *cfg)
{
    const plx_device_ops *ops = dev->ops;
    if (cfg->name && cfg->name[0] && (!dev->name || strcmp(dev->name, cfg->name) != 0)) {
        free(dev->name);
        dev->name = strdup(cfg->name);
        if (!dev->name)
            return -ENOMEM;
    }
    dev->max_dma_len = cfg->max_dma_len;
    dev->lockstep = cfg->lockstep;
    dev->console = cfg->console;
    if (cfg->sandbox && cfg->sandbox->enabled) {
        dev->sandbox = true;
        dev->sandbox_policy = strdup(cfg->sandbox->policy ? cfg->sandbox->policy : "");
        dev->sandbox_allow = calloc(cfg->sandbox->n_allow ? cfg->sandbox->n_allow : 1, sizeof(char *));
        if (!dev->sandbox_policy || !dev->sandbox_allow)
            return -ENOMEM;
        for (size_t i = 0; i < cfg->sandbox->n_allow; i++) {
            if (!(dev->sandbox_allow[i] = strdup(cfg->sandbox->allow[i])))
                return -ENOMEM;
            dev->n_sandbox_allow++;
        }
    }
    for (size_t i = 0; i < cfg->n_props; i++) {
        int k = sdk_prop_index(dev, cfg->props[i]->key);
        if (k < 0) {
            sdk_send_error(dev, EINVAL, "unknown property '%s' (model %s)", cfg->props[i]->key,
                       ops->model ? ops->model : "?");
            return -EINVAL;
        }
        free(dev->prop_values[k]);
        dev->prop_values[k] = strdup(cfg->props[i]->value);
        if (!dev->prop_values[k])
            return -ENOMEM;
    }

    int passed[PLX_MAX_PASSED_FDS];
    unsigned n_passed = cfg->n_passed_fds;
    if (n_passed) {
        int r = plx_hs_recv_fds(dev->fdsock, passed, n_passed, -1);
        if (r < 0) {
            sdk_send_error(dev, -r, "did not receive the %u file descriptors the hub announced: %s", n_passed,
                       strerror(-r));
            return r;
        }
    }

    int ret = 0;
    dev->ram = calloc(cfg->n_ram ? cfg->n_ram : 1, sizeof(*dev->ram));
    if (!dev->ram) {
        ret = -ENOMEM;
        goto out;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < cfg->n_ram; i++) {
        const Plx__RamGrant *g = cfg->ram[i];
        struct ram_map *m = &dev->ram[dev->n_ram++];
        m->base = g->guest_base;
        m->size = g->size;
        m->readonly = g->readonly;
        bool owned;
        int fd = fd_for(g->fd_kind, g->fd, passed, n_passed, &owned);
        if (fd < 0)
            continue;
        if (g->fd_offset % (uint64_t)page == 0 && g->size > 0) {
            void *p = mmap(NULL, g->size, PROT_READ | (g->readonly ? 0 : PROT_WRITE), MAP_SHARED, fd,
                           (off_t)g->fd_offset);
            if (p != MAP_FAILED) {
                m->ptr = p;
                m->map_len = g->size;
            } else {
                plx_log(dev, PLX_LOG_WARNING, "cannot map RAM block '%s' (%s): DMA into it goes by message",
                        g->name, strerror(errno));
            }
        }
        if (owned)
            close(fd);
    }

    dev->n_shadows = ops->n_regions;
    dev->shadows = calloc(ops->n_regions ? ops->n_regions : 1, sizeof(*dev->shadows));
    if (!dev->shadows) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_shadows; i++) {
        const Plx__ShadowGrant *g = cfg->shadows[i];
        if (g->region >= ops->n_regions || ops->regions[g->region].kind != PLX_REGION_SHADOW ||
            dev->shadows[g->region].map) {
            sdk_send_error(dev, EPROTO, "shadow grant for region %u is invalid", g->region);
            ret = -EPROTO;
            goto out;
        }
        bool owned;
        int fd = fd_for(g->fd_kind, g->fd, passed, n_passed, &owned);
        uint64_t rsize = ops->regions[g->region].size;
        if (fd < 0 || g->data_offset < sizeof(struct plx_shadow_header) || g->data_offset > g->map_size ||
            rsize > g->map_size - g->data_offset) {
            sdk_send_error(dev, EPROTO, "shadow grant for region '%s' has no usable fd or bad sizes",
                       ops->regions[g->region].name);
            ret = -EPROTO;
            goto out;
        }
        void *p = mmap(NULL, g->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        int e = errno;
        if (owned)
            close(fd);
        if (p == MAP_FAILED) {
            sdk_send_error(dev, e, "cannot map the shadow page of region '%s': %s", ops->regions[g->region].name,
                       strerror(e));
            ret = -e;
            goto out;
        }
        struct shadow_map *s = &dev->shadows[g->region];
        s->map = p;
        s->map_len = g->map_size;
        s->hdr = p;
        s->data = (uint8_t *)p + g->data_offset;
        s->size = rsize;
    }
    /* A SHADOW region without a page (tcp, or no fd channel) is served by round trips: plx_shadow() is NULL
     * and plx_shadow_store() does nothing, so the read callback must answer every offset. */
    dev->files = calloc(cfg->n_files ? cfg->n_files : 1, sizeof(*dev->files));
    if (!dev->files) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_files; i++) {
        const Plx__FileGrant *g = cfg->files[i];
        bool owned;
        int fd = fd_for(g->fd_kind, g->fd, passed, n_passed, &owned);
        fd = fd < 0 ? -1 : owned ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);     /* the batch is closed below */
        if (fd < 0) {
            sdk_send_error(dev, EPROTO, "file grant '%s' has no usable descriptor", g->name);
            ret = -EPROTO;
            goto out;
        }
        dev->files[dev->n_files] = (struct sdk_file){ .name = strdup(g->name), .fd = fd, .readonly = g->readonly };
        if (!dev->files[dev->n_files++].name) {
            ret = -ENOMEM;
            goto out;
        }
    }
out:
    for (unsigned i = 0; i < n_passed; i++)
        close(passed[i]);
    return ret;
}

int sdk_validate_ops(const plx_device_ops *ops)
{
    if (!ops) {
        sdk_log(NULL, PLX_LOG_ERR, "no device ops");
        return -EINVAL;
    }
    if (ops->version < 1 || ops->version > PLX_DEVICE_OPS_VERSION) {
        sdk_log(NULL, PLX_LOG_ERR, "device ops version %u, this SDK speaks 1 to %u", ops->version,
                PLX_DEVICE_OPS_VERSION);
        return -EINVAL;
    }
    if ((ops->n_regions && !ops->regions) || (ops->n_irqs && !ops->irq_names) || (ops->n_props && !ops->props)) {
        sdk_log(NULL, PLX_LOG_ERR, "%s: a declared array is NULL", ops->model ? ops->model : "device");
        return -EINVAL;
    }
    return 0;
}

void sdk_dev_free(plx_dev *dev)
{
    if (dev->state_hdr)
        munmap(dev->state_hdr, PLX_STATE_BLOCK_SIZE);
    dev->state_hdr = NULL;
    free(dev->state_own);
    dev->state_own = NULL;
    if (dev->prop_values) {
        for (unsigned i = 0; i < dev->ops->n_props; i++)
            free(dev->prop_values[i]);
        free(dev->prop_values);
    }
    for (unsigned i = 0; i < dev->n_ram; i++)
        if (dev->ram[i].ptr)
            munmap(dev->ram[i].ptr, dev->ram[i].map_len);
    free(dev->ram);
    for (unsigned i = 0; i < dev->n_shadows; i++)
        if (dev->shadows[i].map)
            munmap(dev->shadows[i].map, dev->shadows[i].map_len);
    free(dev->shadows);
    for (unsigned i = 0; i < dev->n_files; i++) {
        close(dev->files[i].fd);
        free(dev->files[i].name);
    }
    free(dev->files);
    for (unsigned i = 0; i < dev->n_timers; i++)
        free(dev->timers[i]);
    free(dev->timers);
    while (dev->pend_head) {
        struct pending *p = dev->pend_head;
        dev->pend_head = p->next;
        free(p);
    }
    free(dev->watches);
    free(dev->items);
    free(dev->batch);
    for (size_t i = 0; i < dev->n_sandbox_allow; i++)
        free(dev->sandbox_allow[i]);
    free(dev->sandbox_allow);
    free(dev->sandbox_policy);
    free(dev->irq_level);
    plx_wire_fini(&dev->wire);
    plx_chan_close(dev->chan);
    if (dev->fdsock >= 0)
        close(dev->fdsock);
    free(dev->name);
    if (dev->epfd >= 0)
        close(dev->epfd);
    if (dev->kickfd >= 0)
        close(dev->kickfd);
    if (dev->heap)
        free(dev);
}

/* The hub's Config says the channel moves to the shared-memory ring: its descriptors are the first message on
 * the fd socket. The ZeroMQ socket is closed; the fd socket stays open: its hang-up says the hub is gone. */
static int move_to_ring(plx_dev *dev)
{
    char err[300];
    plx_chan *ring = plx_hs_ring_accept(dev->fdsock, 30000, err, sizeof(err));
    if (!ring) {
        sdk_log(dev, PLX_LOG_ERR, "%s", err);
        return -EPROTO;
    }
    plx_chan_set_peer_fd(ring, dev->fdsock);
    plx_chan_close(dev->chan);  /* the last ZeroMQ channel: its context and I/O thread end */
    dev->chan = ring;
    plx_wire_set_chan(&dev->wire, ring);    /* the Config being applied stays decoded in the wire's arena */
    dev->ring = true;
    return 0;
}

/* A Z85 key from @text, or from the first line of the file @text names when it is not a key itself. */
static int key_from(const char *text, uint8_t key[PLX_CURVE_KEY])
{
    if (plx_curve_decode(text, key) == 0)
        return 0;
    char line[PLX_CURVE_Z85 + 2] = "";
    FILE *f = fopen(text, "re");
    if (!f)
        return -errno;
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    return plx_curve_decode(line, key);
}

/*
 * The CURVE keys for a tcp endpoint: the device's secret key (env PLEXUS_CURVE_SECRET, or --plexus-curve-key=
 * naming it or the file `plexus keygen` wrote) and the hub's public key (env PLEXUS_CURVE_SERVER, or
 * --plexus-hub-key=, a key or a .pub file). 1 with both, 0 with neither (a plain connection), -1 on a bad one.
 */
static int curve_keys(plx_dev *dev, int argc, char **argv, plx_curve *cv)
{
    const char *sec = arg_value(argc, argv, "--plexus-curve-key"), *serv = arg_value(argc, argv, "--plexus-hub-key");
    if (!sec)
        sec = getenv(PLX_ENV_CURVE_SECRET);
    if (!serv)
        serv = getenv(PLX_ENV_CURVE_SERVER);
    if (!sec && !serv)
        return 0;
    if (!sec || !serv) {
        sdk_log(dev, PLX_LOG_ERR, "CURVE needs both the device's secret key (--plexus-curve-key=) and the hub's "
                "public key (--plexus-hub-key=)");
        return -1;
    }
    if (key_from(sec, cv->secret_key) < 0 || plx_curve_public(cv->secret_key, cv->public_key) < 0) {
        sdk_log(dev, PLX_LOG_ERR, "the device's CURVE secret key is not a key, nor a file holding one: %.64s", sec);
        return -1;
    }
    if (key_from(serv, cv->peer_key) < 0) {
        sdk_log(dev, PLX_LOG_ERR, "the hub's CURVE public key is not a key, nor a file holding one: %.64s", serv);
        return -1;
    }
    unsetenv(PLX_ENV_CURVE_SECRET);
    return 1;
}

/* The handshake's channel: a ZeroMQ socket connected to @endpoint (over CURVE with @cv). */
static int connect_hub(plx_dev *dev, const char *endpoint, const plx_curve *cv)
{
    char err[300];
    dev->chan = cv ? plx_chan_zmq_connect_curve(endpoint, RECV_IDLE_MS, cv, err, sizeof(err))
                   : plx_chan_zmq_connect(endpoint, RECV_IDLE_MS, err, sizeof(err));
    if (!dev->chan) {
        sdk_log(dev, PLX_LOG_ERR, "%s", err);
        return -EIO;
    }
    plx_wire_init(&dev->wire, dev->chan);
    return 0;
}

/*
 * Everything before the run loop: arguments and environment, connection, handshake, init(), the sandbox,
 * Ready. 0, or -1 with the reason logged (and, once connected, sent to the hub).
 */
int sdk_dev_setup(plx_dev *dev, int argc, char **argv)
{
    const plx_device_ops *ops = dev->ops;
    /* ZeroMQ writes to its sockets without MSG_NOSIGNAL: a hub that went away must be an error the run loop
     * sees, not a SIGPIPE that ends the device. Writes to a closed stdout fail with EPIPE the same way. */
    signal(SIGPIPE, SIG_IGN);

    const char *endpoint = arg_value(argc, argv, "--plexus-endpoint");
    if (!endpoint)
        endpoint = getenv(PLX_ENV_ENDPOINT);
    const char *attach_path = arg_value(argc, argv, "--plexus-attach");
    if (!attach_path)
        attach_path = getenv(PLX_ENV_ATTACH);
    const char *name = arg_value(argc, argv, "--plexus-name");
    if (!name)
        name = getenv(PLX_ENV_DEVICE_NAME);
    if (name && !(dev->name = strdup(name)))
        return -1;
    const char *fdsock = getenv(PLX_ENV_FD_SOCKET);
    if (fdsock && *fdsock) {
        char *end;
        long v = strtol(fdsock, &end, 10);
        if (*end == 0 && v >= 0 && v < INT32_MAX) {
            dev->fdsock = (int)v;
            fcntl(dev->fdsock, F_SETFD, FD_CLOEXEC);
        }
    }
    unsetenv(PLX_ENV_FD_SOCKET);
    /* A started device runs under its jail's filter from its first instruction: a call it denies is named. */
    if (dev->fdsock >= 0) {
        dev->jailed = true;
        plx_sandbox_report(dev->fdsock);
    }
    const char *statefd = getenv(PLX_ENV_STATE_FD);
    if (statefd && *statefd) {
        char *end;
        long v = strtol(statefd, &end, 10);
        if (*end == 0 && v > 2 && v < INT32_MAX) {
            void *p = mmap(NULL, PLX_STATE_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, (int)v, 0);
            if (p != MAP_FAILED)
                dev->state_hdr = p;
            close((int)v);
        }
    }
    unsetenv(PLX_ENV_STATE_FD);

    dev->prop_values = calloc(ops->n_props ? ops->n_props : 1, sizeof(char *));
    dev->irq_level = malloc(ops->n_irqs ? ops->n_irqs : 1);
    if (!dev->prop_values || !dev->irq_level)
        return -1;
    memset(dev->irq_level, 0, ops->n_irqs ? ops->n_irqs : 1);

    char ep[512];
    if (!endpoint && attach_path) {
        if (attach(dev, attach_path, arg_value(argc, argv, "--plexus-key-file"), ep, sizeof(ep)) < 0)
            return -1;
        endpoint = ep;
    }
    if (!endpoint) {
        sdk_log(dev, PLX_LOG_ERR, "no hub to talk to: set " PLX_ENV_ENDPOINT " (or --plexus-endpoint=), or "
                PLX_ENV_ATTACH " and " PLX_ENV_DEVICE_NAME);
        return -1;
    }

    plx_curve cv;
    int curve = strncmp(endpoint, "tcp://", 6) == 0 ? curve_keys(dev, argc, argv, &cv) : 0;
    if (curve < 0 || connect_hub(dev, endpoint, curve ? &cv : NULL) < 0)
        return -1;

    if (send_hello_declare(dev) < 0)
        return -1;
    Plx__Envelope *env;
    if (handshake_recv(dev, &env, PLX__ENVELOPE__MSG_HELLO, 30000) < 0)
        return -1;
    uint32_t minor;
    char why[200];
    if (plx_hs_hello_check(env->hello, &minor, why, sizeof(why)) < 0) {
        sdk_log(dev, PLX_LOG_ERR, "the hub's %s", why);
        return -1;
    }
    dev->hub_caps = env->hello->capabilities;
    plx_wire_release(&dev->wire);
    if (handshake_recv(dev, &env, PLX__ENVELOPE__MSG_CONFIG, 30000) < 0)
        return -1;
    dev->connected = true;
    if (env->config->ring && move_to_ring(dev) < 0) {
        plx_wire_release(&dev->wire);
        return -1;
    }
    if (apply_config(dev, env->config) < 0) {
        plx_wire_release(&dev->wire);
        return -1;
    }
    plx_wire_release(&dev->wire);
    if (dev->fdsock >= 0 && !dev->sandbox && !dev->ring && !dev->jailed) {
        close(dev->fdsock);
        dev->fdsock = -1;
    }

    if (ops->init) {
        int r = ops->init(dev, &dev->opaque);
        if (r < 0) {
            sdk_send_error(dev, -r, "init failed: %s", strerror(-r));
            return -1;
        }
    }
    dev->initialized = true;
    for (unsigned i = 0; i < dev->n_files; i++)
        if (!dev->files[i].taken)
            plx_log(dev, PLX_LOG_WARNING, "the machine gives the file '%s', which this device (%s) does not use",
                    dev->files[i].name, ops->model ? ops->model : "?");
    if (dev->sandbox) {
        /* The fd socket stays open: the sandbox reports a denied call on it. */
        char why[256];
        if (plx_sandbox_apply(dev->sandbox_policy, dev->sandbox_allow, dev->n_sandbox_allow, dev->fdsock, why,
                              sizeof(why)) < 0) {
            sdk_send_error(dev, EPERM, "%s", why);
            return -1;
        }
    }
    Plx__Ready rdy = PLX__READY__INIT;
    Plx__Envelope renv = PLX__ENVELOPE__INIT;
    renv.msg_case = PLX__ENVELOPE__MSG_READY;
    renv.ready = &rdy;
    if (sdk_send_env(dev, &renv) < 0)
        return -1;

    return 0;
}

/* fini(), Goodbye (if the hub is still there), free. */
void sdk_dev_finish(plx_dev *dev, int status)
{
    if (dev->initialized && dev->ops->fini)
        dev->ops->fini(dev->opaque);
    dev->initialized = false;
    if (dev->connected && dev->chan) {
        Plx__Goodbye gb = PLX__GOODBYE__INIT;
        gb.status = status;
        Plx__Envelope genv = PLX__ENVELOPE__INIT;
        genv.msg_case = PLX__ENVELOPE__MSG_GOODBYE;
        genv.goodbye = &gb;
        plx_wire_send(&dev->wire, &genv, PLX_CHAN_DONTWAIT);
    }
    sdk_dev_free(dev);
}

PLX_EXPORT int
plx_dev_main(const plx_device_ops *ops, int argc, char **argv)
{
    if (!sdk_log_handler_set())
        plx_set_log_handler(sdk_log_to_stderr, NULL);     /* a program's default: its standard error */
    if (sdk_validate_ops(ops) < 0)
        return 2;
    plx_dev devs = { .ops = ops, .fdsock = -1, .epfd = -1, .kickfd = -1, .next_event = PLX_NEVER }, *dev = &devs;
    int status = 1;
    if (sdk_dev_setup(dev, argc, argv) == 0) {
        int r = sdk_run_loop(dev);
        status = r < 0 ? 1 : dev->status;
        if (r < 0) {
            sdk_log(dev, PLX_LOG_ERR, "lost the connection to the hub");
            dev->connected = false;     /* nobody to say Goodbye to */
        }
    }
    sdk_dev_finish(dev, status);
    return status;
}

