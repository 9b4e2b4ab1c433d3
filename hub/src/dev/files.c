/*
 * Files the machine gives a device (a disk image): the hub opens them when the device is added, so that a
 * confined device process never opens a path, and passes the descriptors with every Config (a restarted process
 * gets the same open files). Each is locked as a disk is: read-write files exclusively, read-only ones shared,
 * so two machines cannot write one image.
 */
#define _GNU_SOURCE
#include "dev/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dev/declare.h"

int
hub_dev_files_open(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    if (!cfg->n_files)
        return 0;
    if (cfg->n_files > PLX_MAX_FILES) {
        error_setg(errp, "device '%s': %zu files (at most %u)", d->name, cfg->n_files, PLX_MAX_FILES);
        return -EINVAL;
    }
    if (cfg->endpoint && strncmp(cfg->endpoint, "ipc://", 6)) {
        error_setg(errp, "device '%s': files are passed as descriptors, which a device on %s cannot take", d->name,
                   cfg->endpoint);
        return -EINVAL;
    }
    d->files = calloc(cfg->n_files, sizeof(*d->files));
    if (!d->files) {
        error_setg(errp, "device '%s': out of memory", d->name);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_files; i++) {
        const hub_file *f = &cfg->files[i];
        if (!hub_dev_name_ok(f->name) || !f->path) {
            error_setg(errp, "device '%s': file %zu needs a name (letters, digits, '_', '-') and a path", d->name, i);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->files[j].name, f->name)) {
                error_setg(errp, "device '%s': two files named '%s'", d->name, f->name);
                return -EINVAL;
            }
        int fd = open(f->path, (f->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            error_setg(errp, "device '%s': file '%s': cannot open %s %s: %s", d->name, f->name, f->path,
                       f->readonly ? "for reading" : "for reading and writing", strerror(errno));
            return -errno;
        }
        d->files[d->n_files++] = (struct hub_dev_file){ .fd = fd, .readonly = f->readonly };
        if (!(d->files[i].name = strdup(f->name))) {
            error_setg(errp, "device '%s': out of memory", d->name);
            return -ENOMEM;
        }
        if (flock(fd, (f->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
            error_setg(errp, "device '%s': file '%s': %s is in use by another process (%s)", d->name, f->name,
                       f->path, errno == EWOULDBLOCK ? "locked" : strerror(errno));
            return -EBUSY;
        }
    }
    return 0;
}

int
hub_dev_files_grant(hub_device *d, Plx__FileGrant *g, Plx__FileGrant **gp, int *passed, unsigned *n_passed,
                    Error **errp)
{
    if (!d->n_files)
        return 0;
    if (d->inc.fdsock < 0) {
        error_setg(errp, "device '%s': its files are passed as descriptors, but it has no descriptor channel "
                   "(a device on another host)", d->name);
        return -EPROTO;
    }
    if (*n_passed + d->n_files > PLX_MAX_PASSED_FDS) {
        error_setg(errp, "device '%s': more than %u descriptors to pass", d->name, PLX_MAX_PASSED_FDS);
        return -EPROTO;
    }
    for (unsigned i = 0; i < d->n_files; i++) {
        plx__file_grant__init(&g[i]);
        g[i].name = d->files[i].name;
        g[i].fd_kind = PLX__FD_KIND__FD_PASSED;
        g[i].fd = (int32_t)*n_passed;
        g[i].readonly = d->files[i].readonly;
        passed[(*n_passed)++] = d->files[i].fd;
        gp[i] = &g[i];
    }
    return (int)d->n_files;
}
