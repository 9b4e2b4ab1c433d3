/* A device configuration's deep copy, kept by a device that may be restarted. */
#include "dev/devcfg.h"

#include <stdlib.h>
#include <string.h>

/* ---- copies ----------------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *ok = false;
    return c;
}

static char **dup_strv(const char *const *v, size_t n, bool *ok)
{
    if (!v)
        return NULL;
    char **c = calloc(n + 1, sizeof(char *));
    if (!c) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        c[i] = dup_or_null(v[i], ok);
    return c;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static size_t argv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void
hub_device_config_clear(hub_device_config *c)
{
    free((char *)c->name);
    free((char *)c->program);
    free((char *)c->plugin);
    free_strv((char **)c->argv, argv_len(c->argv));
    for (size_t i = 0; c->props && i < c->n_props; i++) {
        free((char *)c->props[i].key);
        free((char *)c->props[i].value);
    }
    free((void *)c->props);
    for (size_t i = 0; c->regions && i < c->n_regions; i++)
        free((char *)c->regions[i].region);
    free((void *)c->regions);
    free((void *)c->irqs);
    free_strv((char **)c->ram_grants, c->n_ram_grants);
    free((char *)c->endpoint);
    free((char *)c->curve_key);
    free((char *)c->sandbox_policy);
    free_strv((char **)c->sandbox_allow, c->n_sandbox_allow);
    free_strv((char **)c->sandbox_read, c->n_sandbox_read);
    free_strv((char **)c->sandbox_write, c->n_sandbox_write);
    for (size_t i = 0; c->files && i < c->n_files; i++) {
        free((char *)c->files[i].name);
        free((char *)c->files[i].path);
    }
    free((void *)c->files);
}

void
hub_dev_cfg_free(hub_device_config *c)
{
    if (!c)
        return;
    hub_device_config_clear(c);
    free(c);
}

/* A deep copy of @src, for starting the device again later. */
hub_device_config *
hub_dev_cfg_dup(const hub_device_config *src)
{
    hub_device_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    bool ok = true;
    *c = *src;
    c->name = dup_or_null(src->name, &ok);
    c->program = dup_or_null(src->program, &ok);
    c->plugin = dup_or_null(src->plugin, &ok);
    c->argv = (const char *const *)dup_strv(src->argv, argv_len(src->argv), &ok);
    c->props = NULL;
    c->regions = NULL;
    c->irqs = NULL;
    if (src->n_props) {
        hub_prop *p = calloc(src->n_props, sizeof(*p));
        ok = ok && p;
        for (size_t i = 0; p && i < src->n_props; i++) {
            p[i].key = dup_or_null(src->props[i].key, &ok);
            p[i].value = dup_or_null(src->props[i].value, &ok);
        }
        c->props = p;
    }
    if (src->n_regions) {
        hub_region_map *r = calloc(src->n_regions, sizeof(*r));
        ok = ok && r;
        for (size_t i = 0; r && i < src->n_regions; i++) {
            r[i].region = dup_or_null(src->regions[i].region, &ok);
            r[i].base = src->regions[i].base;
        }
        c->regions = r;
    }
    if (src->n_irqs) {
        hub_irq_map *q = calloc(src->n_irqs, sizeof(*q));
        ok = ok && q;
        if (q)
            memcpy(q, src->irqs, sizeof(*q) * src->n_irqs);
        c->irqs = q;
    }
    c->ram_grants = (const char *const *)dup_strv(src->ram_grants, src->n_ram_grants, &ok);
    c->endpoint = dup_or_null(src->endpoint, &ok);
    c->curve_key = dup_or_null(src->curve_key, &ok);
    c->sandbox_policy = dup_or_null(src->sandbox_policy, &ok);
    c->sandbox_allow = (const char *const *)dup_strv(src->sandbox_allow, src->n_sandbox_allow, &ok);
    c->sandbox_read = (const char *const *)dup_strv(src->sandbox_read, src->n_sandbox_read, &ok);
    c->sandbox_write = (const char *const *)dup_strv(src->sandbox_write, src->n_sandbox_write, &ok);
    c->files = NULL;
    if (src->n_files) {
        hub_file *f = calloc(src->n_files, sizeof(*f));
        ok = ok && f;
        for (size_t i = 0; f && i < src->n_files; i++)
            f[i] = (hub_file){ dup_or_null(src->files[i].name, &ok), dup_or_null(src->files[i].path, &ok),
                               src->files[i].readonly };
        c->files = f;
    }
    if (!ok) {
        hub_dev_cfg_free(c);
        return NULL;
    }
    return c;
}
