/* `plexus new-device`: see newdev.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newdev.h"

#define NAME_MAX_LEN 48
#define MAX_CREATED 64

static int __attribute__((format(printf, 3, 4))) fail(Error **errp, int r, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    error_setg(errp, "%s", msg ? msg : strerror(-r));
    free(msg);
    return r;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

/* The template folder of @path ("c/x" -> "c"), into @buf. */
static const char *folder_of(const char *path, char *buf, size_t cap)
{
    size_t n = strcspn(path, "/");

    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), path);
    return buf;
}

const char *newdev_langs(void)
{
    static char langs[128];

    if (langs[0])
        return langs;
    for (size_t i = 0; i < newdev_n_files; i++) {
        char f[32], key[40];

        folder_of(newdev_files[i].path, f, sizeof(f));
        snprintf(key, sizeof(key), "%s, ", f);
        if (strcmp(f, "common") && !strstr(langs, key))
            strncat(langs, key, sizeof(langs) - strlen(langs) - 1);
    }
    size_t n = strlen(langs);
    if (n >= 2)
        langs[n - 2] = 0;
    return langs;
}

bool newdev_has_firmware(void)
{
    for (size_t i = 0; i < newdev_n_files; i++)
        if (!strcmp(newdev_files[i].path, "common/firmware.elf"))
            return true;
    return false;
}

typedef struct subst {
    const char *key, *value;
} subst;

/* @s with every @KEY@ of @tab replaced; malloc'd. */
static char *substitute(const char *s, size_t len, const subst *tab, size_t n_tab, size_t *out_len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, out_len);

    if (!f)
        abort();
    for (size_t i = 0; i < len; i++) {
        size_t k = n_tab;

        if (s[i] == '@')
            for (k = 0; k < n_tab; k++)
                if (!strncmp(s + i, tab[k].key, strlen(tab[k].key)))
                    break;
        if (k < n_tab) {
            fputs(tab[k].value, f);
            i += strlen(tab[k].key) - 1;
        } else {
            fputc(s[i], f);
        }
    }
    fclose(f);
    return out;
}

typedef struct created {
    char *paths[MAX_CREATED];
    bool is_dir[MAX_CREATED];
    size_t n;
} created;

static void undo(created *c)
{
    while (c->n > 0) {
        c->n--;
        if (c->is_dir[c->n])
            rmdir(c->paths[c->n]);
        else
            unlink(c->paths[c->n]);
        free(c->paths[c->n]);
    }
}

static void forget(created *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->paths[i]);
    c->n = 0;
}

static int remember(created *c, const char *path, bool is_dir)
{
    if (c->n == MAX_CREATED)
        return -E2BIG;
    c->paths[c->n] = strdup(path);
    c->is_dir[c->n++] = is_dir;
    return 0;
}

/* Create the folders of @path below @root (which exists). */
static int make_parents(created *c, const char *root, const char *rel, Error **errp)
{
    char *p = NULL;

    for (const char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
        if (asprintf(&p, "%s/%.*s", root, (int)(slash - rel), rel) < 0)
            abort();
        if (mkdir(p, 0777) == 0) {
            remember(c, p, true);
        } else if (errno != EEXIST) {
            int r = -errno;
            fail(errp, r, "cannot create %s: %s", p, strerror(errno));
            free(p);
            return r;
        }
        free(p);
    }
    return 0;
}

static int write_all(const char *path, const void *data, size_t len, Error **errp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    const char *p = data;

    if (fd < 0)
        return fail(errp, -errno, "cannot create %s: %s", path, strerror(errno));
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int r = w < 0 ? -errno : -EIO;
            close(fd);
            return fail(errp, r, "cannot write %s: %s", path, strerror(-r));
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) < 0)
        return fail(errp, -errno, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int newdev_write(const newdev_opts *o, char **files, Error **errp)
{
    char id[NAME_MAX_LEN + 1], folder[32];
    bool known = false;

    if (!valid_name(o->name))
        return fail(errp, -EINVAL, "'%s' is not a device name: use up to %d letters, digits, '-' and '_', "
                    "starting with a letter", o->name, NAME_MAX_LEN);
    for (size_t i = 0; i < newdev_n_files; i++)
        known |= strcmp(o->lang, "common") && !strcmp(folder_of(newdev_files[i].path, folder, sizeof(folder)),
                                                      o->lang);
    if (!known)
        return fail(errp, -EINVAL, "unknown language '%s': expected one of %s", o->lang, newdev_langs());
    snprintf(id, sizeof(id), "%s", o->name);
    for (char *c = id; *c; c++)
        if (*c == '-')
            *c = '_';
    const subst tab[] = {
        { "@NAME@", o->name }, { "@ID@", id }, { "@PKG_CONFIG_PATH@", o->pkg_config_path },
        { "@DOCDIR@", o->doc_dir }, { "@VERSION@", o->version },
    };
    const size_t n_tab = sizeof(tab) / sizeof(tab[0]);

    if (mkdir(o->dir, 0777) < 0) {
        if (errno == EEXIST)
            return fail(errp, -EEXIST, "%s already exists: choose another name, or a new folder with --dir", o->dir);
        return fail(errp, -errno, "cannot create %s: %s", o->dir, strerror(errno));
    }
    created c = { .n = 0 };
    remember(&c, o->dir, true);

    char *list = NULL;
    size_t list_len = 0;
    FILE *lf = open_memstream(&list, &list_len);
    int r = 0;
    if (!lf)
        abort();
    for (size_t i = 0; i < newdev_n_files && r == 0; i++) {
        const newdev_file *f = &newdev_files[i];
        folder_of(f->path, folder, sizeof(folder));
        if (strcmp(folder, "common") && strcmp(folder, o->lang))
            continue;
        size_t rlen;
        const char *tail = f->path + strlen(folder) + 1;
        char *rel = substitute(tail, strlen(tail), tab, n_tab, &rlen);
        char *path = NULL;
        if (asprintf(&path, "%s/%s", o->dir, rel) < 0)
            abort();
        r = make_parents(&c, o->dir, rel, errp);
        if (r == 0) {
            /* Built images go out as they are; text gets the substitutions. */
            size_t len = f->size;
            char *text = NULL;
            const size_t nl = strlen(rel);
            bool binary = nl > 4 && !strcmp(rel + nl - 4, ".elf");
            if (!binary)
                text = substitute((const char *)f->data, f->size, tab, n_tab, &len);
            r = write_all(path, binary ? (const void *)f->data : text, len, errp);
            free(text);
        }
        if (r == 0 && (r = remember(&c, path, false)) < 0)
            fail(errp, r, "too many files in the %s template", o->lang);
        if (r == 0)
            fprintf(lf, "%s\n", rel);
        free(path);
        free(rel);
    }
    fclose(lf);
    if (r < 0) {
        undo(&c);
        free(list);
        return r;
    }
    forget(&c);
    *files = list;
    return 0;
}
