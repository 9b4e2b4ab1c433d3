#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static Error abort_sentinel, fatal_sentinel;
Error *error_abort = &abort_sentinel;
Error *error_fatal = &fatal_sentinel;

void
error_free(Error *err)
{
    if (!err || err == &abort_sentinel || err == &fatal_sentinel)
        return;
    free(err->msg);
    free(err);
}

const char *
error_get_pretty(const Error *err)
{
    return err && err->msg ? err->msg : "";
}

void
error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    if (!errp)
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (errp == &error_abort || errp == &error_fatal) {
        fprintf(stderr, "plexus-memory: %s\n", msg ? msg : fmt);
        if (errp == &error_abort)
            abort();
        exit(1);
    }
    Error *err = calloc(1, sizeof(*err));
    if (!err) {
        free(msg);
        return;
    }
    err->msg = msg ? msg : strdup(fmt);
    if (*errp == NULL)
        *errp = err;
    else
        error_free(err); /* keep the first error */
}

int
event_notifier_init(EventNotifier *e, int active)
{
    int fd = eventfd(active ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        e->rfd = e->wfd = -1;
        return -errno;
    }
    e->rfd = e->wfd = fd;
    return 0;
}

void
event_notifier_cleanup(EventNotifier *e)
{
    if (!e || e->rfd < 0)
        return;
    if (e->wfd != e->rfd && e->wfd >= 0)
        close(e->wfd);
    close(e->rfd);
    e->rfd = e->wfd = -1;
}

int
event_notifier_get_fd(const EventNotifier *e)
{
    return e->rfd;
}

int
event_notifier_set(EventNotifier *e)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(e->wfd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EAGAIN) /* EAGAIN: counter saturated, still signalled */
        return -errno;
    return 0;
}

int
event_notifier_test_and_clear(EventNotifier *e)
{
    uint64_t v = 0;
    ssize_t r;
    do {
        r = read(e->rfd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
    return r == sizeof(v) && v != 0;
}
