/* The hub's side of the handshake (docs/protocol.md): Hello and Declare in, Hello and Config (with RAM, shadow
 * pages and perhaps the ring) out, Ready in; and accepting a device that attaches. */
#define _GNU_SOURCE
#include "dev/handshake.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/declare.h"
#include "dev/files.h"
#include "dev/link.h"
#include "dev/output.h"
#include "dev/serve.h"
#include "dev/spawn.h"
#include "plexus/handshake.h"

/* ---- handshake ------------------------------------------------------------------------------------------- */

/* Wait for the next handshake message. Log messages are forwarded meanwhile, and once the device has its Config
 * (@live) everything it may send on its own is served too (a timer or an interrupt its init() sets up). */
static int hs_recv(hub_device *d, uint64_t deadline, Plx__Envelope **out, Error **errp, const char *what, bool live)
{
    for (;;) {
        Plx__Envelope *env;
        hub_dev_output_drain(d);
        hub_dev_check_refused(d);
        int r = plx_wire_recv(&d->inc.wire, &env, 0);
        if (r == 0) {
            bool hs = env->msg_case == PLX__ENVELOPE__MSG_HELLO || env->msg_case == PLX__ENVELOPE__MSG_DECLARE ||
                      env->msg_case == PLX__ENVELOPE__MSG_READY || env->msg_case == PLX__ENVELOPE__MSG_ERROR;
            if (env->msg_case == PLX__ENVELOPE__MSG_LOG || (live && !hs)) {
                bool was_failed = d->failed;    /* a slot being restarted stays failed until it is back */
                hub_dev_serve(d, env);      /* releases it */
                if ((d->failed && !was_failed) || d->inc.flooded || d->inc.said_goodbye) {
                    error_setg(errp, "device '%s': failed before sending %s", d->name, what);
                    return -EIO;
                }
                if (hub_dev_now_ms() >= deadline) {
                    error_setg(errp, "device '%s': no %s within the handshake timeout", d->name, what);
                    return -ETIMEDOUT;
                }
                continue;
            }
            if (env->msg_case == PLX__ENVELOPE__MSG_ERROR) {
                char text[512];
                const char *t = env->error->text ? env->error->text : "error";
                error_setg(errp, "device '%s': %s", d->name, hub_dev_clean(t, strnlen(t, 120), text, sizeof(text)));
                plx_wire_release(&d->inc.wire);
                return -EPROTO;
            }
            *out = env;
            return 0;
        }
        if (r == -EBADMSG) {
            error_setg(errp, "device '%s': undecodable frame while waiting for %s", d->name, what);
            return -EPROTO;
        }
        if (r != -EAGAIN && r != -EINTR) {
            error_setg(errp, "device '%s': receive failed: %s", d->name, hub_dev_chan_strerror(d, r));
            return r;
        }
        uint64_t now = hub_dev_now_ms();
        if (now >= deadline) {
            if (hub_dev_reap(d) || d->inc.exited)
                error_setg(errp, "device '%s': process %s before sending %s", d->name, d->inc.exit_desc, what);
            else if (d->inc.tcp && d->inc.chan && plx_chan_curve_refused(d->inc.chan))
                error_setg(errp, "device '%s': did not send %s within the handshake timeout (%u connections with "
                           "another CURVE key refused)", d->name, what, plx_chan_curve_refused(d->inc.chan));
            else
                error_setg(errp, "device '%s': did not send %s within the handshake timeout", d->name, what);
            return -ETIMEDOUT;
        }
        uint64_t left = deadline - now;
        int w = hub_dev_wait(d, (int)(left > 100 ? 100 : left));
        if (w < 0) {
            error_setg(errp, "device '%s': poll failed: %s", d->name, strerror(-w));
            return -EIO;
        }
        /* Give frames the process wrote before dying a moment to arrive. */
        if (w == 2 && hub_dev_wait(d, 50) != 1 && hub_dev_reap(d)) {
            error_setg(errp, "device '%s': process %s before sending %s", d->name, d->inc.exit_desc, what);
            return -ECHILD;
        }
    }
}

static int make_shadow(hub_device *d, hub_region *r, Error **errp)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t data = ((size_t)r->size + (size_t)page - 1) & ~((size_t)page - 1);
    size_t len = PLX_SHADOW_HEADER_SIZE + data;
    char nm[64];
    snprintf(nm, sizeof(nm), "plexus-shadow-%s", r->name);
    int fd = memfd_create(nm, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)len) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        error_setg(errp, "device '%s': cannot create the shadow page of region '%s': %s", d->name, r->name,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        error_setg(errp, "device '%s': cannot map the shadow page of region '%s': %s", d->name, r->name,
                   strerror(errno));
        close(fd);
        return -errno;
    }
    r->shadow_fd = fd;
    r->shadow_map = p;
    r->shadow_len = len;
    r->shadow_hdr = p;
    r->shadow_data = (uint8_t *)p + PLX_SHADOW_HEADER_SIZE;
    r->shadow_hdr->magic = PLX_SHADOW_MAGIC;
    r->shadow_hdr->version = PLX_SHADOW_VERSION;
    r->shadow_hdr->applied_seq = 0;
    r->shadow_hdr->region_size = r->size;
    return 0;
}

int
hub_dev_handshake(hub_device *d, const hub_device_config *cfg, uint64_t hello_deadline, bool restart,
                     Error **errp)
{
    hub_devmgr *m = d->m;
    Plx__Envelope *env;
    plx_chan *ring = NULL, *zchan = NULL;
    int r = hs_recv(d, hello_deadline, &env, errp, "its Hello", false);
    if (r < 0)
        return r;
    if (env->msg_case != PLX__ENVELOPE__MSG_HELLO) {
        error_setg(errp, "device '%s': first message is %s, not Hello", d->name, plx_wire_msg_name(env->msg_case));
        plx_wire_release(&d->inc.wire);
        return -EPROTO;
    }
    char t[160];
    d->inc.capabilities = env->hello->capabilities;
    free(d->model);
    d->model = strdup(hub_dev_name_ok(env->hello->model) ? env->hello->model : "unknown");
    r = plx_hs_hello_check(env->hello, &d->inc.minor, t, sizeof(t));
    plx_wire_release(&d->inc.wire);
    if (!d->model)
        return -ENOMEM;
    if (r < 0) {
        hub_dev_send_error(d, EPROTONOSUPPORT, t);
        error_setg(errp, "device '%s': %s", d->name, t);
        return r;
    }

    r = hs_recv(d, hub_dev_now_ms() + d->timeout_ms + 5000, &env, errp, "its Declare", false);
    if (r < 0)
        return r;
    if (env->msg_case != PLX__ENVELOPE__MSG_DECLARE) {
        error_setg(errp, "device '%s': expected Declare after Hello, got %s", d->name,
                   plx_wire_msg_name(env->msg_case));
        plx_wire_release(&d->inc.wire);
        return -EPROTO;
    }
    if (restart) {
        hub_device tmp = { .m = m, .name = d->name };
        r = hub_dev_decl_take(&tmp, env->declare, errp);
        plx_wire_release(&d->inc.wire);
        if (r == 0 && !hub_dev_decl_same(d, &tmp)) {
            error_setg(errp, "device '%s' declares other regions or IRQ lines than before its restart", d->name);
            r = -EINVAL;
        }
        hub_dev_decl_free(&tmp);
    } else {
        r = hub_dev_decl_take(d, env->declare, errp);
        plx_wire_release(&d->inc.wire);
        if (r == 0)
            r = hub_dev_decl_check(d, cfg, errp);
    }
    if (r < 0) {
        hub_dev_send_error(d, EINVAL, errp && *errp ? error_get_pretty(*errp) : "declaration refused");
        return r;
    }

    /* Build the Config. */
    bool local = !d->inc.tcp && !cfg->ram_by_message;
    int passed[PLX_MAX_PASSED_FDS];
    unsigned n_passed = 0;
    Plx__RamGrant *rg = calloc(m->env.n_ram ? m->env.n_ram : 1, sizeof(*rg));
    Plx__RamGrant **rgp = calloc(m->env.n_ram ? m->env.n_ram : 1, sizeof(*rgp));
    Plx__ShadowGrant *sg = calloc(d->n_regions ? d->n_regions : 1, sizeof(*sg));
    Plx__ShadowGrant **sgp = calloc(d->n_regions ? d->n_regions : 1, sizeof(*sgp));
    Plx__Prop *pp = calloc(cfg->n_props ? cfg->n_props : 1, sizeof(*pp));
    Plx__Prop **ppp = calloc(cfg->n_props ? cfg->n_props : 1, sizeof(*ppp));
    Plx__Placement *pl = calloc(d->n_regions ? d->n_regions : 1, sizeof(*pl));
    Plx__Placement **plp = calloc(d->n_regions ? d->n_regions : 1, sizeof(*plp));
    r = -ENOMEM;
    if (!rg || !rgp || !sg || !sgp || !pp || !ppp || !pl || !plp) {
        error_setg(errp, "device '%s': out of memory", d->name);
        goto out;
    }
    Plx__Config c = PLX__CONFIG__INIT;
    c.name = d->name;
    for (size_t i = 0; i < cfg->n_props; i++) {
        plx__prop__init(&pp[i]);
        pp[i].key = (char *)cfg->props[i].key;
        pp[i].value = (char *)(cfg->props[i].value ? cfg->props[i].value : "");
        ppp[c.n_props++] = &pp[i];
    }
    c.props = ppp;
    for (unsigned i = 0; i < d->n_regions; i++) {
        plx__placement__init(&pl[i]);
        pl[i].region = i;
        pl[i].guest_base = d->regions[i].base;
        plp[c.n_placement++] = &pl[i];
    }
    c.placement = plp;
    for (size_t i = 0; i < m->env.n_ram; i++) {
        const hub_ram_block *b = &m->env.ram[i];
        if (!hub_dev_ram_granted(cfg, b))
            continue;
        Plx__RamGrant *g = &rg[c.n_ram];
        plx__ram_grant__init(g);
        g->id = (uint32_t)i;
        g->name = (char *)(b->name ? b->name : "");
        g->guest_base = b->base;
        g->size = b->size;
        g->readonly = b->readonly;
        g->fd = -1;
        g->fd_kind = PLX__FD_KIND__FD_NONE;
        if (local && b->fd >= 0 && (d->inc.capabilities & PLX_CAP_RAM_FDS)) {
            if (d->inc.spawned) {
                g->fd_kind = PLX__FD_KIND__FD_INHERITED;
                g->fd = b->fd;
            } else if (d->inc.fdsock >= 0) {
                g->fd_kind = PLX__FD_KIND__FD_PASSED;
                g->fd = (int32_t)n_passed;
                passed[n_passed++] = b->fd;
            }
        }
        rgp[c.n_ram++] = g;
    }
    c.ram = rgp;
    for (unsigned i = 0; i < d->n_regions; i++) {
        hub_region *reg = &d->regions[i];
        if (reg->kind != PLX__REGION_KIND__REGION_SHADOW)
            continue;
        if (!local || d->inc.fdsock < 0 || !(d->inc.capabilities & PLX_CAP_SHADOW)) {
            if (reg->shadow_fd >= 0) {
                error_setg(errp, "device '%s' came back without support for its shadow page", d->name);
                r = -EPROTO;
                goto out;
            }
            continue;   /* without a shared page a SHADOW region behaves as POSTED: reads are round trips */
        }
        if (reg->shadow_fd < 0) {
            r = make_shadow(d, reg, errp);
            if (r < 0)
                goto out;
        } else {
            /* A restarted device starts from a blank page and sequence 0. */
            /* Zeroed by giving the pages back (they are allocated again as the device writes them), not by
             * touching every page the region might have. */
            size_t data = reg->shadow_len - PLX_SHADOW_HEADER_SIZE;
            if (fallocate(reg->shadow_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PLX_SHADOW_HEADER_SIZE,
                          (off_t)data) < 0)
                memset(reg->shadow_data, 0, reg->size);
            __atomic_store_n(&reg->shadow_hdr->applied_seq, 0, __ATOMIC_RELEASE);
        }
        Plx__ShadowGrant *g = &sg[c.n_shadows];
        plx__shadow_grant__init(g);
        g->region = i;
        g->fd_kind = PLX__FD_KIND__FD_PASSED;
        g->fd = (int32_t)n_passed;
        passed[n_passed++] = reg->shadow_fd;
        g->map_size = reg->shadow_len;
        g->data_offset = PLX_SHADOW_HEADER_SIZE;
        sgp[c.n_shadows++] = g;
    }
    c.shadows = sgp;
    Plx__FileGrant fg[PLX_MAX_FILES], *fgp[PLX_MAX_FILES];
    int nf = hub_dev_files_grant(d, fg, fgp, passed, &n_passed, errp);
    if (nf < 0) {
        r = nf;
        goto out;
    }
    c.n_files = (size_t)nf;
    c.files = fgp;
    c.n_passed_fds = n_passed;
    c.timeout_ms = d->timeout_ms;
    c.max_dma_len = PLX_MAX_DMA;
    Plx__Sandbox sb = PLX__SANDBOX__INIT;
    if (cfg->sandbox) {
        sb.enabled = true;
        sb.policy = (char *)(cfg->sandbox_policy ? cfg->sandbox_policy : "");
        sb.allow = (char **)cfg->sandbox_allow;
        sb.n_allow = cfg->sandbox_allow ? cfg->n_sandbox_allow : 0;
        c.sandbox = &sb;
    }

    if (cfg->lockstep && !(d->inc.capabilities & PLX_CAP_LOCKSTEP)) {
        error_setg(errp, "device '%s': sync: lockstep asked for, but the device does not offer it (no "
                   "CAP_LOCKSTEP in its Hello)", d->name);
        r = -EPROTO;
        goto out;
    }
    if (d->inc.ring_wanted && d->inc.fdsock >= 0 && (d->inc.capabilities & PLX_CAP_RING)) {
        uint64_t spin = cfg->ring_spin_us ? (uint64_t)cfg->ring_spin_us * 1000u : HUB_RING_SPIN_NS;
        ring = plx_hs_ring_offer(d->inc.fdsock, cfg->ring_slots, spin);
        if (!ring) {
            error_setg(errp, "device '%s': cannot give it a ring: %s", d->name, strerror(errno));
            r = -EIO;
            goto out;
        }
        c.ring = true;
    } else if (d->inc.ring_required) {
        error_setg(errp, "device '%s': transport 'ring' asked for, but %s", d->name,
                   d->inc.fdsock < 0 ? "the device has no fd socket (not started or attached on this host)"
                                 : "the device does not offer it (no CAP_RING in its Hello)");
        r = -EPROTO;
        goto out;
    }

    c.lockstep = cfg->lockstep;
    c.console = cfg->console && (d->inc.capabilities & PLX_CAP_CONSOLE);
    if (cfg->console && !c.console && !restart)
        hub_dev_log(m, d->name, PLX_LOG_WARNING, "the console device does not take the console over its channel "
                    "(no CAP_CONSOLE in its Hello): it gets no keyboard input, and its output shows as its log");
    Plx__Hello h;
    plx_hs_hello_init(&h, PLX_CAPS_HUB, NULL, NULL);
    h.minor = d->inc.minor;
    Plx__Envelope out = PLX__ENVELOPE__INIT;
    out.msg_case = PLX__ENVELOPE__MSG_HELLO;
    out.hello = &h;
    if ((r = hub_dev_send(d, &out)) < 0) {
        error_setg(errp, "device '%s': cannot send Hello", d->name);
        goto out;
    }
    out.msg_case = PLX__ENVELOPE__MSG_CONFIG;
    out.config = &c;
    r = hub_dev_send(d, &out);
    if (ring) {
        /* From here on the ring. The ZeroMQ socket is closed once Ready shows the Config arrived (closing
         * drops what is still queued). */
        plx_chan_set_send_timeout(ring, (int)d->timeout_ms);
        plx_chan_set_peer_fd(ring, d->inc.pidfd >= 0 ? d->inc.pidfd : d->inc.fdsock);
        zchan = d->inc.chan;
        plx_wire_fini(&d->inc.wire);
        d->inc.chan = ring;
        d->inc.ring = true;
        plx_wire_init(&d->inc.wire, d->inc.chan);
        free(d->inc.endpoint);
        d->inc.endpoint = strdup("ring");
        if (d->inc.ipc_path) {
            unlink(d->inc.ipc_path);
            free(d->inc.ipc_path);
            d->inc.ipc_path = NULL;
        }
    }
    if (r < 0 || !d->inc.endpoint) {
        error_setg(errp, "device '%s': cannot send Config", d->name);
        r = r < 0 ? r : -ENOMEM;
        goto out;
    }
    if (n_passed && (r = plx_hs_send_fds(d->inc.fdsock, passed, n_passed)) < 0) {
        error_setg(errp, "device '%s': cannot pass %u file descriptors: %s", d->name, n_passed, strerror(-r));
        goto out;
    }
    unsigned init_ms = d->timeout_ms > HUB_HELLO_TIMEOUT_MS ? d->timeout_ms : HUB_HELLO_TIMEOUT_MS;
    r = hs_recv(d, hub_dev_now_ms() + init_ms, &env, errp, "Ready (init)", true);
    if (r < 0)
        goto out;
    if (env->msg_case != PLX__ENVELOPE__MSG_READY) {
        error_setg(errp, "device '%s': expected Ready, got %s", d->name, plx_wire_msg_name(env->msg_case));
        plx_wire_release(&d->inc.wire);
        r = -EPROTO;
        goto out;
    }
    plx_wire_release(&d->inc.wire);
    r = 0;
out:
    plx_chan_close(zchan);
    free(rg);
    free(rgp);
    free(sg);
    free(sgp);
    free(pp);
    free(ppp);
    free(pl);
    free(plp);
    return r;
}

/* Connections to the attach socket being heard: each gets a short deadline to say who it is, and all are heard
 * at once, so silent ones cannot hold a real device up. */
#define ATTACH_CONNS 32
#define ATTACH_SAY_MS 1000

static bool key_equal(const char *a, const char *b)
{
    unsigned diff = 0;
    for (unsigned i = 0; i < PLX_ATTACH_KEY_LEN; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

/* One request on @c: 1 if it is d's (answered with the endpoint), 0 if done with it (answered, or refused), -1 if
 * nothing came yet. */
static int attach_request(hub_device *d, int c)
{
    char req[PLX_MAX_NAME + PLX_ATTACH_KEY_LEN + 16], name[PLX_MAX_NAME + 1], key[PLX_ATTACH_KEY_LEN + 1];
    ssize_t n = recv(c, req, sizeof(req), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -1;
    if (n <= 0 || plx_hs_attach_parse(req, (size_t)n, name, sizeof(name), key, sizeof(key)) < 0) {
        static const char bad[] = "error: expected 'attach NAME KEY'";
        send(c, bad, sizeof(bad) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        return 0;
    }
    if (strcmp(name, d->name) != 0) {
        plx_hs_attach_answer(c, NULL);      /* another device, perhaps added later: it retries */
        return 0;
    }
    struct ucred cr = { 0 };
    socklen_t cl = sizeof(cr);
    bool uid_ok = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && (cr.uid == geteuid() || cr.uid == 0);
    if (!uid_ok || !key_equal(key, d->attach_key)) {
        hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "attach as '%s' refused: %s (pid %d, uid %u)", d->name,
                    uid_ok ? "wrong key" : "another user", (int)cr.pid, (unsigned)cr.uid);
        static const char no[] = "error: refused";
        send(c, no, sizeof(no) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        return 0;
    }
    if (plx_hs_attach_answer(c, d->inc.endpoint) < 0)
        return 0;
    d->inc.peer_pid = cr.pid;
    return 1;
}

/* Wait on the attach socket for the device called d->name, with its key and of this user; hand it the
 * endpoint. */
int
hub_dev_accept_attach(hub_device *d, uint64_t deadline, Error **errp)
{
    hub_devmgr *m = d->m;
    struct pollfd p[1 + ATTACH_CONNS];
    uint64_t until[ATTACH_CONNS];
    unsigned n = 0;
    int r = -ETIMEDOUT;
    for (;;) {
        uint64_t now = hub_dev_now_ms();
        for (unsigned i = 0; i < n;) {      /* silent too long: dropped */
            if (now >= until[i]) {
                close(p[1 + i].fd);
                p[1 + i] = p[n];
                until[i] = until[n - 1];
                n--;
            } else {
                i++;
            }
        }
        if (now >= deadline)
            break;
        p[0] = (struct pollfd){ .fd = m->attach_fd, .events = POLLIN };
        uint64_t wait = deadline - now;
        for (unsigned i = 0; i < n; i++) {
            p[1 + i].events = POLLIN;
            if (until[i] - now < wait)
                wait = until[i] - now;
        }
        if (poll(p, 1 + n, (int)wait) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            int c = accept4(m->attach_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0 && n == ATTACH_CONNS) {
                close(p[1].fd);             /* a waiting one makes room */
                p[1] = p[n];
                until[0] = until[n - 1];
                n--;
            }
            if (c >= 0) {
                p[1 + n] = (struct pollfd){ .fd = c, .events = POLLIN };
                until[n++] = hub_dev_now_ms() + ATTACH_SAY_MS;
            }
        }
        for (unsigned i = 0; i < n;) {
            int a = p[1 + i].revents ? attach_request(d, p[1 + i].fd) : -1;
            if (a < 0) {
                i++;
                continue;
            }
            if (a == 1) {
                int c = p[1 + i].fd;
                fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK);
                d->inc.fdsock = c;
                p[1 + i] = p[n];
                until[i] = until[n - 1];
                n--;
                r = 0;
                break;
            }
            close(p[1 + i].fd);
            p[1 + i] = p[n];
            until[i] = until[n - 1];
            n--;
        }
        if (r == 0)
            break;
    }
    for (unsigned i = 0; i < n; i++)
        close(p[1 + i].fd);
    if (r < 0)
        error_setg(errp, "device '%s': nothing attached on %s in time", d->name, m->attach_path);
    return r;
}

/* The number of seccomp filters process @pid runs under, from /proc; -1 if it cannot be read. */
static int seccomp_filters(int pid)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    int n = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/*
 * The machine asks for the device's own sandbox, which the device installs (docs/protocol.md, Config.sandbox):
 * by Ready it has one more seccomp filter than its jail gave it. One that did not is said (a strict device is
 * refused): its jail still confines it.
 */
static int check_filter(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    int pid = d->inc.spawned ? hub_device_pid(d) : d->inc.peer_pid;
    int n = pid > 0 ? seccomp_filters(pid) : -1;
    int jail = d->inc.jail & HUB_JAIL_SECCOMP ? 1 : 0;
    if (n < 0 || n > jail)
        return 0;
    if (cfg->strict) {
        error_setg(errp, "device '%s': sandbox enabled, but the device did not install its system-call filter "
                   "(strict)", d->name);
        return -EPERM;
    }
    hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "sandbox enabled, but the device did not install its system-call "
                "filter: only its jail confines it");
    return 0;
}

int
hub_dev_start(hub_device *d, const hub_device_config *cfg, bool restart, Error **errp)
{
    uint64_t deadline = hub_dev_now_ms() + HUB_HELLO_TIMEOUT_MS;
    int r = hub_dev_bind_channel(d, cfg, errp);
    if (r == 0 && cfg->attach) {
        deadline = hub_dev_now_ms() + (cfg->attach_timeout_ms ? cfg->attach_timeout_ms : 10000);
        if (!d->inc.tcp)
            r = hub_dev_accept_attach(d, deadline, errp);
    } else if (r == 0) {
        r = hub_dev_spawn(d, cfg, errp);
    }
    if (r == 0)
        r = hub_dev_handshake(d, cfg, deadline, restart, errp);
    if (r == 0 && cfg->sandbox)
        r = check_filter(d, cfg, errp);
    if (r < 0)
        return r;
    /* The fd socket stays open where a denied system call may be reported on it: a sandboxed device, and every
     * device in a jail (its seccomp filter is on from the start). */
    if (d->inc.fdsock >= 0 && !cfg->sandbox && !d->inc.ring && !(d->inc.jail & HUB_JAIL_SECCOMP)) {
        close(d->inc.fdsock);
        d->inc.fdsock = -1;
    }
    if ((d->inc.capabilities & PLX_CAP_WRITE_BATCH) &&
        plx_wire_batch_init(&d->inc.batch, (d->inc.capabilities & PLX_CAP_WRITE_TIMES) != 0) < 0) {
        error_setg(errp, "device '%s': out of memory", d->name);
        return -ENOMEM;
    }
    return 0;
}
