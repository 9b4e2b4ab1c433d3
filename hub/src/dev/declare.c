/* What a device declares (regions, IRQ lines, properties): checked against the protocol's limits and placed
 * as the machine configures it. */
#define _GNU_SOURCE
#include "dev/declare.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


bool
hub_dev_name_ok(const char *s)
{
    if (!s || !s[0] || strlen(s) > PLX_MAX_NAME)
        return false;
    for (; *s; s++)
        if (!isprint((unsigned char)*s))
            return false;
    return true;
}

static bool size_ok(uint32_t s)
{
    return s == 0 || s == 1 || s == 2 || s == 4 || s == 8;
}

static int rules_ok(const Plx__AccessRules *r)
{
    if (!r)
        return 1;
    if (!size_ok(r->min_access_size) || !size_ok(r->max_access_size))
        return 0;
    if (r->min_access_size && r->max_access_size && r->min_access_size > r->max_access_size)
        return 0;
    return 1;
}

int
hub_dev_decl_take(hub_device *d, const Plx__Declare *dc, Error **errp)
{
    if (dc->n_regions > PLX_MAX_REGIONS || dc->n_irqs > PLX_MAX_IRQS || dc->n_props > PLX_MAX_PROPS) {
        error_setg(errp, "device '%s' declares too much (%zu regions, %zu irqs, %zu props; limits %d/%d/%d)",
                   d->name, dc->n_regions, dc->n_irqs, dc->n_props, PLX_MAX_REGIONS, PLX_MAX_IRQS, PLX_MAX_PROPS);
        return -EINVAL;
    }
    d->regions = calloc(dc->n_regions ? dc->n_regions : 1, sizeof(*d->regions));
    d->irq_names = calloc(dc->n_irqs ? dc->n_irqs : 1, sizeof(char *));
    d->irq_map = malloc(sizeof(unsigned) * (dc->n_irqs ? dc->n_irqs : 1));
    d->props = calloc(dc->n_props ? dc->n_props : 1, sizeof(char *));
    d->irq_level = calloc(dc->n_irqs ? dc->n_irqs : 1, 1);
    if (!d->regions || !d->irq_names || !d->irq_map || !d->props || !d->irq_level) {
        error_setg(errp, "device '%s': out of memory", d->name);
        return -ENOMEM;
    }
    for (size_t i = 0; i < dc->n_regions; i++) {
        const Plx__RegionDecl *rd = dc->regions[i];
        hub_region *r = &d->regions[i];
        r->dev = d;
        r->index = (unsigned)i;
        r->shadow_fd = -1;
        d->n_regions++;
        if (!hub_dev_name_ok(rd->name)) {
            error_setg(errp, "device '%s': region %zu has no usable name", d->name, i);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->regions[j].name, rd->name) == 0) {
                error_setg(errp, "device '%s': region '%s' is declared twice", d->name, rd->name);
                return -EINVAL;
            }
        r->name = strdup(rd->name);
        if (!r->name)
            return -ENOMEM;
        if (rd->size == 0 || rd->size > PLX_MAX_REGION_SIZE) {
            error_setg(errp, "device '%s': region '%s' has size 0x%" PRIx64 " (must be 1..2^40)", d->name,
                       rd->name, rd->size);
            return -EINVAL;
        }
        r->size = rd->size;
        if (rd->kind != PLX__REGION_KIND__REGION_IO && rd->kind != PLX__REGION_KIND__REGION_POSTED &&
            rd->kind != PLX__REGION_KIND__REGION_SHADOW) {
            error_setg(errp, "device '%s': region '%s' has unknown kind %d", d->name, rd->name, (int)rd->kind);
            return -EINVAL;
        }
        r->kind = rd->kind;
        if (rd->endianness != PLX__ENDIAN__LITTLE && rd->endianness != PLX__ENDIAN__BIG) {
            error_setg(errp, "device '%s': region '%s' has unknown endianness %d", d->name, rd->name,
                       (int)rd->endianness);
            return -EINVAL;
        }
        if (!rules_ok(rd->valid) || !rules_ok(rd->impl)) {
            error_setg(errp, "device '%s': region '%s' has bad access sizes (each of 0, 1, 2, 4, 8; min <= max)",
                       d->name, rd->name);
            return -EINVAL;
        }
        if (rd->n_read_through && rd->kind != PLX__REGION_KIND__REGION_SHADOW) {
            error_setg(errp, "device '%s': region '%s' has read-through ranges but is not a SHADOW region",
                       d->name, rd->name);
            return -EINVAL;
        }
        if (rd->n_read_through > PLX_MAX_READ_THROUGH) {
            error_setg(errp, "device '%s': region '%s' has %zu read-through ranges (limit %d)", d->name, rd->name,
                       rd->n_read_through, PLX_MAX_READ_THROUGH);
            return -EINVAL;
        }
        for (size_t j = 0; j < rd->n_read_through; j++) {
            const Plx__Range *rg = rd->read_through[j];
            if (rg->len == 0 || rg->offset >= r->size || rg->len > r->size - rg->offset) {
                error_setg(errp, "device '%s': region '%s': read-through range 0x%" PRIx64 "+0x%" PRIx64
                           " is outside the region (size 0x%" PRIx64 ")", d->name, rd->name, rg->offset, rg->len,
                           r->size);
                return -EINVAL;
            }
            r->read_through[j].offset = rg->offset;
            r->read_through[j].len = rg->len;
        }
        r->n_read_through = (unsigned)rd->n_read_through;

        MemoryRegionOps *ops = &r->ops;
        memset(ops, 0, sizeof(*ops));
        ops->endianness = rd->endianness == PLX__ENDIAN__BIG ? DEVICE_BIG_ENDIAN : DEVICE_LITTLE_ENDIAN;
        if (rd->valid) {
            ops->valid.min_access_size = rd->valid->min_access_size;
            ops->valid.max_access_size = rd->valid->max_access_size;
            ops->valid.unaligned = rd->valid->unaligned;
        }
        if (rd->impl) {
            ops->impl.min_access_size = rd->impl->min_access_size;
            ops->impl.max_access_size = rd->impl->max_access_size;
            ops->impl.unaligned = rd->impl->unaligned;
        }
    }
    for (size_t i = 0; i < dc->n_irqs; i++) {
        if (!hub_dev_name_ok(dc->irqs[i])) {
            error_setg(errp, "device '%s': IRQ line %zu has no usable name", d->name, i);
            return -EINVAL;
        }
        d->irq_names[i] = strdup(dc->irqs[i]);
        d->irq_map[i] = HUB_IRQ_UNMAPPED;
        d->n_irqs++;
        if (!d->irq_names[i])
            return -ENOMEM;
    }
    if (dc->dt_node && dc->dt_node[0]) {
        size_t l = strlen(dc->dt_node);
        bool ok = l <= 31;
        for (const char *c = dc->dt_node; ok && *c; c++)
            ok = isalnum((unsigned char)*c) || strchr(",._+-", *c);
        if (!ok) {
            error_setg(errp, "device '%s' declares the device-tree node name '%.40s' (expected up to 31 letters, "
                       "digits and ,._+-)", d->name, dc->dt_node);
            return -EINVAL;
        }
        free(d->dt_node);
        if (!(d->dt_node = strdup(dc->dt_node)))
            return -ENOMEM;
    }
    for (size_t i = 0; i < dc->n_props; i++) {
        if (!hub_dev_name_ok(dc->props[i]->name)) {
            error_setg(errp, "device '%s': property %zu has no usable name", d->name, i);
            return -EINVAL;
        }
        d->props[i] = strdup(dc->props[i]->name);
        d->n_props++;
        if (!d->props[i])
            return -ENOMEM;
    }
    return 0;
}

int
hub_dev_decl_check(hub_device *d, const hub_device_config *cfg, Error **errp)
{
    hub_devmgr *m = d->m;
    /* What its regions cost the hub: address space for every region, memory for SHADOW ones (allocated as the
     * device writes them, but bounded here). */
    uint64_t total = 0, shadow = 0;
    for (unsigned j = 0; j < d->n_regions; j++) {
        total += d->regions[j].size;
        if (d->regions[j].kind == PLX__REGION_KIND__REGION_SHADOW)
            shadow += d->regions[j].size;
    }
    uint64_t max_total = cfg->limits.region_bytes ? cfg->limits.region_bytes : HUB_LIMIT_REGION_BYTES;
    uint64_t max_shadow = cfg->limits.shadow_bytes ? cfg->limits.shadow_bytes : HUB_LIMIT_SHADOW_BYTES;
    if (total > max_total) {
        error_setg(errp, "device '%s' declares 0x%" PRIx64 " bytes of regions (limit region_bytes: 0x%" PRIx64 ")",
                   d->name, total, max_total);
        return -EINVAL;
    }
    if (shadow > max_shadow) {
        error_setg(errp, "device '%s' declares 0x%" PRIx64 " bytes of SHADOW regions (limit shadow_bytes: 0x%" PRIx64
                   ")", d->name, shadow, max_shadow);
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->n_props; i++) {
        bool found = false;
        for (unsigned j = 0; j < d->n_props && !found; j++)
            found = strcmp(d->props[j], cfg->props[i].key) == 0;
        if (!found) {
            char known[512] = "";
            size_t off = 0;
            for (unsigned j = 0; j < d->n_props && off < sizeof(known); j++)
                off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s", j ? ", " : "", d->props[j]);
            error_setg(errp, "device '%s' (model %s) has no property '%s' (it accepts: %s)", d->name, d->model,
                       cfg->props[i].key, d->n_props ? known : "none");
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < cfg->n_regions; i++) {
        const char *rn = cfg->regions[i].region;
        hub_region *r = NULL;
        if (!rn) {
            r = d->n_regions ? &d->regions[0] : NULL;
        } else {
            for (unsigned j = 0; j < d->n_regions && !r; j++)
                if (strcmp(d->regions[j].name, rn) == 0)
                    r = &d->regions[j];
        }
        if (!r) {
            error_setg(errp, "device '%s' (model %s) declares no region '%s' to place", d->name, d->model,
                       rn ? rn : "(first)");
            return -EINVAL;
        }
        if (r->placed) {
            error_setg(errp, "device '%s': region '%s' is placed twice", d->name, r->name);
            return -EINVAL;
        }
        r->placed = true;
        r->base = cfg->regions[i].base;
        if (r->base + r->size - 1 < r->base) {
            error_setg(errp, "device '%s': region '%s' at 0x%" PRIx64 " wraps around the address space", d->name,
                       r->name, r->base);
            return -EINVAL;
        }
    }
    for (unsigned j = 0; j < d->n_regions; j++)
        if (!d->regions[j].placed) {
            error_setg(errp, "device '%s': region '%s' (size 0x%" PRIx64 ") is not placed in the machine", d->name,
                       d->regions[j].name, d->regions[j].size);
            return -EINVAL;
        }
    for (size_t i = 0; i < cfg->n_irqs; i++) {
        if (cfg->irqs[i].line >= d->n_irqs) {
            error_setg(errp, "device '%s': IRQ line %u is connected, but the device declares %u line%s", d->name,
                       cfg->irqs[i].line, d->n_irqs, d->n_irqs == 1 ? "" : "s");
            return -EINVAL;
        }
        d->irq_map[cfg->irqs[i].line] = cfg->irqs[i].irq;
    }
    for (size_t i = 0; i < cfg->n_ram_grants; i++) {
        bool found = false;
        for (size_t j = 0; j < m->env.n_ram && !found; j++)
            found = m->env.ram[j].name && strcmp(m->env.ram[j].name, cfg->ram_grants[i]) == 0;
        if (!found) {
            error_setg(errp, "device '%s': RAM grant '%s' names no RAM block", d->name, cfg->ram_grants[i]);
            return -EINVAL;
        }
    }
    return 0;
}

bool
hub_dev_ram_granted(const hub_device_config *cfg, const hub_ram_block *b)
{
    if (!cfg->ram_grants && cfg->n_ram_grants == 0)
        return true;
    for (size_t i = 0; i < cfg->n_ram_grants; i++)
        if (b->name && strcmp(cfg->ram_grants[i], b->name) == 0)
            return true;
    return false;
}
/* Free what hub_dev_decl_take() allocated: region names, IRQ names and lines, properties. */
void
hub_dev_decl_free(hub_device *d)
{
    for (unsigned i = 0; i < d->n_regions; i++) {
        free(d->regions[i].name);
    }
    free(d->regions);
    for (unsigned i = 0; i < d->n_irqs; i++)
        free(d->irq_names[i]);
    free(d->irq_names);
    free(d->irq_map);
    free(d->irq_level);
    for (unsigned i = 0; i < d->n_props; i++)
        free(d->props[i]);
    free(d->props);
    free(d->dt_node);
    d->dt_node = NULL;
}

/* A restarted device must declare what its first instance did: its regions stay mapped. */
bool
hub_dev_decl_same(const hub_device *a, const hub_device *b)
{
    if (a->n_regions != b->n_regions || a->n_irqs != b->n_irqs)
        return false;
    for (unsigned i = 0; i < a->n_regions; i++) {
        const hub_region *x = &a->regions[i], *y = &b->regions[i];
        if (strcmp(x->name, y->name) || x->size != y->size || x->kind != y->kind ||
            x->ops.endianness != y->ops.endianness || x->n_read_through != y->n_read_through ||
            memcmp(&x->ops.valid, &y->ops.valid, sizeof(x->ops.valid)) ||
            memcmp(&x->ops.impl, &y->ops.impl, sizeof(x->ops.impl)) ||
            memcmp(x->read_through, y->read_through, sizeof(*x->read_through) * x->n_read_through))
            return false;
    }
    return true;
}

/* Hello + Declare in, Hello + Config (+ fds) out, Ready in. */
