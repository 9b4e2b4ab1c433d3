#define _GNU_SOURCE
/* mtree_info: the region trees and flat views as text, in the style of `info mtree`. */
#include "internal.h"

#include <string.h>

static const char *kind(const MemoryRegion *mr)
{
    if (mr->alias)
        return "alias";
    if (mr->rom_device)
        return mr->romd_mode ? "romd" : "i/o";
    if (mr->ram_device)
        return "ramd";
    if (mr->ram)
        return mr->readonly ? "rom" : "ram";
    if (mr->terminates)
        return "i/o";
    return "container";
}

static hwaddr last_of(hwaddr start, Int128 size)
{
    return size ? (hwaddr)(start + size - 1) : start;
}

static int cmp_mr(const void *a, const void *b)
{
    const MemoryRegion *x = *(MemoryRegion *const *)a, *y = *(MemoryRegion *const *)b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return 0;
}

static void print_tree(fprintf_function pr, void *f, const MemoryRegion *mr, hwaddr base, int level)
{
    hwaddr start = base + mr->addr;
    pr(f, "%*s%016" PRIx64 "-%016" PRIx64 " (prio %d, %s): %s", level * 2, "", start, last_of(start, mr->size),
       mr->priority, kind(mr), memory_region_name(mr));
    if (mr->alias)
        pr(f, " @%s %016" PRIx64 "-%016" PRIx64, memory_region_name(mr->alias), mr->alias_offset,
           last_of(mr->alias_offset, mr->size));
    pr(f, "%s\n", mr->enabled ? "" : " [disabled]");
    size_t n = 0;
    for (const MemoryRegion *c = mr->subregions_first; c; c = c->subregions_next)
        n++;
    if (!n)
        return;
    const MemoryRegion **v = malloc(n * sizeof(*v));
    if (!v)
        return;
    n = 0;
    for (const MemoryRegion *c = mr->subregions_first; c; c = c->subregions_next)
        v[n++] = c;
    qsort(v, n, sizeof(*v), cmp_mr);
    for (size_t i = 0; i < n; i++)
        print_tree(pr, f, v[i], start, level + 1);
    free(v);
}

void
mtree_info(fprintf_function mon_printf, void *f, bool flatview, bool dispatch_tree)
{
    mem_lock();
    for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next) {
        mon_printf(f, "address-space: %s\n", as->name);
        print_tree(mon_printf, f, as->root, 0 - as->root->addr, 1);
        mon_printf(f, "\n");
    }
    if (flatview) {
        unsigned n = 0;
        for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next, n++) {
            FlatView *fv = as_view(as);
            mon_printf(f, "FlatView #%u\n", n);
            mon_printf(f, " AS \"%s\", root: %s\n", as->name, memory_region_name(as->root));
            if (!fv->nr)
                mon_printf(f, "  No rendered FlatView\n");
            for (unsigned i = 0; i < fv->nr; i++) {
                const FlatRange *fr = &fv->ranges[i];
                mon_printf(f, "  %016" PRIx64 "-%016" PRIx64 " (prio %d, %s%s): %s", fr->start, fr->last,
                           fr->mr->priority, kind(fr->mr), fr->readonly && !(fr->mr->ram && fr->mr->readonly) ? ", readonly" : "",
                           memory_region_name(fr->mr));
                if (fr->offset_in_region)
                    mon_printf(f, " @%016" PRIx64, fr->offset_in_region);
                mon_printf(f, "\n");
            }
            mon_printf(f, "\n");
        }
    }
    mem_unlock();
}
