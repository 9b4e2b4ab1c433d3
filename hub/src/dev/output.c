/* What a device says (output.h): its stdout/stderr pipe and its Log messages, as lines the hub can show. */
#define _GNU_SOURCE
#include "dev/output.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char *
hub_dev_clean(const char *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t')
            c = ' ';
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else if (o + 4 < cap) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            break;
        }
    }
    if (cap)
        out[o] = 0;
    return out;
}

static uint32_t max_per_s(const hub_device *d)
{
    return d->limits.log_bytes_per_s ? d->limits.log_bytes_per_s : HUB_LIMIT_LOG_BYTES_PER_S;
}

static void report_hidden(hub_device *d)
{
    struct hub_output_limit *l = &d->out_limit;
    if (l->hidden_lines)
        hub_dev_log(d->m, d->name, PLX_LOG_WARNING, "%" PRIu64 " lines (%" PRIu64 " bytes) of its output not "
                    "shown: more than %u bytes a second", l->hidden_lines, l->hidden_bytes, HUB_LOG_SHOWN_PER_S);
    l->hidden_lines = l->hidden_bytes = 0;
}

/* A new second: say what was not shown in the last one. */
static void roll(hub_device *d, uint64_t now)
{
    struct hub_output_limit *l = &d->out_limit;
    if (now < l->window_ms + 1000)
        return;
    report_hidden(d);
    l->window_ms = now;
    l->shown = l->total = 0;
}

/* One line (no newline in it) at @level: counted against the limits, shown if the second's budget allows. */
static void line(hub_device *d, int level, const char *s, size_t n)
{
    if (d->inc.flooded)
        return;
    struct hub_output_limit *l = &d->out_limit;
    roll(d, hub_dev_now_ms());
    l->total += n + 1;
    if (l->total > max_per_s(d)) {
        d->inc.flooded = true;
        report_hidden(d);
        hub_dev_fail(d, "floods its log: more than %u bytes in one second (limit log_bytes_per_s)", max_per_s(d));
        return;
    }
    if (l->shown + n + 1 > HUB_LOG_SHOWN_PER_S) {
        l->hidden_lines++;
        l->hidden_bytes += n + 1;
        return;
    }
    l->shown += n + 1;
    char clean[4 * HUB_LOG_LINE_MAX + 1];
    hub_dev_log(d->m, d->name, level, "%s", hub_dev_clean(s, n, clean, sizeof(clean)));
}

void
hub_dev_output_text(hub_device *d, int level, const char *text, size_t len)
{
    while (len) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        for (size_t off = 0; off < n || (n == 0 && off == 0); off += HUB_LOG_LINE_MAX) {
            size_t k = n - off < HUB_LOG_LINE_MAX ? n - off : HUB_LOG_LINE_MAX;
            line(d, level, text + off, k);
            if (n == 0)
                break;
        }
        if (!nl)
            break;
        text = nl + 1;
        len -= n + 1;
    }
}

void
hub_dev_output_drain(hub_device *d)
{
    hub_incarnation *in = &d->inc;
    char buf[4096];
    /* A bounded amount per call: a device writing without pause must not hold the hub here. */
    for (unsigned rounds = 0; in->out_fd >= 0 && rounds < 16; rounds++) {
        ssize_t n = read(in->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN) {       /* its end is closed: nothing more will come */
                close(in->out_fd);
                in->out_fd = -1;
            }
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || in->out_len == sizeof(in->out_line)) {
                line(d, HUB_LOG_OUTPUT, in->out_line, in->out_len);
                in->out_len = 0;
                if (buf[i] == '\n')
                    continue;
            }
            in->out_line[in->out_len++] = buf[i];
        }
    }
}

void
hub_dev_output_end(hub_device *d)
{
    hub_dev_output_drain(d);
    if (d->inc.out_len)
        line(d, HUB_LOG_OUTPUT, d->inc.out_line, d->inc.out_len);
    d->inc.out_len = 0;
    report_hidden(d);
}

void
hub_dev_complain(hub_device *d, const char *fmt, ...)
{
    char buf[HUB_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        line(d, PLX_LOG_WARNING, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}
