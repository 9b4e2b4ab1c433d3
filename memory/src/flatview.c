#define _GNU_SOURCE
/*
 * Rendering a region tree into a flat view, publishing it and telling listeners what changed.
 *
 * Rendering walks the tree in precedence order (subregions by descending priority, each before its
 * container's own content, aliases replaced by their target) and emits one piece per terminating region,
 * clipped to every enclosing window. The first piece emitted that covers an address is what shows there.
 * Resolving overlaps is a sweep over the sorted piece boundaries with a min-heap on emission rank:
 * O(n log n) for n pieces, and a plain sort when nothing overlaps (the usual case).
 */
#include "internal.h"

#include <string.h>

typedef __int128 s128;

typedef struct Piece {
    s128 lo, hi;   /* [lo, hi) in the address space */
    s128 base;     /* address-space address of offset 0 of mr */
    MemoryRegion *mr;
    bool readonly;
} Piece;

typedef struct Pieces {
    Piece *v;
    size_t n, cap;
} Pieces;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort();
    return q;
}

Int128
mr_size128(const MemoryRegion *mr)
{
    return mr->size;
}

static void render(Pieces *ps, MemoryRegion *mr, s128 base, s128 clo, s128 chi, bool readonly)
{
    if (!mr->enabled || mr->rendering)
        return;
    s128 lo = clo > base ? clo : base;
    s128 end = base + mr->size;
    s128 hi = chi < end ? chi : end;
    if (lo >= hi)
        return;
    readonly |= mr->readonly;
    mr->rendering = true;
    if (mr->alias) {
        render(ps, mr->alias, base - (s128)mr->alias_offset, lo, hi, readonly);
        mr->rendering = false;
        return;
    }
    for (MemoryRegion *c = mr->subregions_first; c; c = c->subregions_next)
        render(ps, c, base + (s128)c->addr, lo, hi, readonly);
    mr->rendering = false;
    if (mr->terminates) {
        if (ps->n == ps->cap) {
            ps->cap = ps->cap ? ps->cap * 2 : 64;
            ps->v = xrealloc(ps->v, ps->cap * sizeof(Piece));
        }
        ps->v[ps->n++] = (Piece){ lo, hi, base, mr, readonly };
    }
}

typedef struct Seg {
    s128 lo, hi;
    const Piece *p;
} Seg;

typedef struct Segs {
    Seg *v;
    size_t n, cap;
} Segs;

static void seg_emit(Segs *ss, s128 lo, s128 hi, const Piece *p)
{
    if (ss->n) {
        Seg *last = &ss->v[ss->n - 1];
        /* Merge with the previous segment when it continues the same region contiguously. */
        if (last->hi == lo && last->p->mr == p->mr && last->p->readonly == p->readonly &&
            last->p->base == p->base) {
            last->hi = hi;
            return;
        }
    }
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 64;
        ss->v = xrealloc(ss->v, ss->cap * sizeof(Seg));
    }
    ss->v[ss->n++] = (Seg){ lo, hi, p };
}

typedef struct Event {
    s128 at;
    size_t idx;
    bool start;
} Event;

static int cmp_event(const void *a, const void *b)
{
    const Event *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return 0;
}

static void heap_push(size_t *h, size_t *n, size_t v)
{
    size_t i = (*n)++;
    h[i] = v;
    while (i && h[(i - 1) / 2] > h[i]) {
        size_t p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static void heap_pop(size_t *h, size_t *n)
{
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m])
            m = l;
        if (r < *n && h[r] < h[m])
            m = r;
        if (m == i)
            break;
        size_t t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
}

static bool piece_before(const Piece *v, size_t a, size_t b)
{
    return v[a].lo < v[b].lo || (v[a].lo == v[b].lo && a < b);
}

/*
 * Indices of @v sorted by start address. Siblings are usually added in address order, so the pieces come
 * out as a few ascending or descending runs: a natural merge sort makes that O(n log runs) instead of
 * O(n log n).
 */
static void sort_pieces(const Piece *v, size_t n, size_t *order)
{
    size_t *runs = xrealloc(NULL, (n + 1) * sizeof(size_t)), nruns = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        if (j < n && !piece_before(v, i, j)) {
            while (j < n && !piece_before(v, j - 1, j))
                j++;
            for (size_t k = 0; k < j - i; k++)
                order[i + k] = j - 1 - k;
        } else {
            while (j < n && piece_before(v, j - 1, j))
                j++;
            for (size_t k = i; k < j; k++)
                order[k] = k;
        }
        runs[nruns++] = i;
        i = j;
    }
    runs[nruns] = n;
    size_t *tmp = xrealloc(NULL, n * sizeof(size_t));
    while (nruns > 1) {
        size_t out = 0;
        for (size_t r = 0; r < nruns; r += 2) {
            size_t a = runs[r], m = runs[r + 1], b = r + 2 <= nruns ? runs[r + 2 > nruns ? nruns : r + 2] : n;
            runs[out++] = a;
            if (r + 1 >= nruns)
                break;
            size_t x = a, y = m, k = a;
            while (x < m && y < b)
                tmp[k++] = piece_before(v, order[y], order[x]) ? order[y++] : order[x++];
            while (x < m)
                tmp[k++] = order[x++];
            while (y < b)
                tmp[k++] = order[y++];
            memcpy(order + a, tmp + a, (b - a) * sizeof(size_t));
        }
        runs[out] = n;
        nruns = out;
    }
    free(tmp);
    free(runs);
}

/* Visible segments, sorted by address. */
static void resolve(const Pieces *ps, Segs *ss)
{
    size_t n = ps->n;
    if (!n)
        return;
    size_t *order = xrealloc(NULL, n * sizeof(size_t));
    sort_pieces(ps->v, n, order);
    bool overlap = false;
    for (size_t i = 1; i < n && !overlap; i++)
        overlap = ps->v[order[i]].lo < ps->v[order[i - 1]].hi;
    if (!overlap) {
        for (size_t i = 0; i < n; i++)
            seg_emit(ss, ps->v[order[i]].lo, ps->v[order[i]].hi, &ps->v[order[i]]);
        free(order);
        return;
    }
    free(order);
    Event *ev = xrealloc(NULL, 2 * n * sizeof(Event));
    for (size_t i = 0; i < n; i++) {
        ev[2 * i] = (Event){ ps->v[i].lo, i, true };
        ev[2 * i + 1] = (Event){ ps->v[i].hi, i, false };
    }
    qsort(ev, 2 * n, sizeof(Event), cmp_event);
    size_t *heap = xrealloc(NULL, n * sizeof(size_t)), hn = 0;
    bool *alive = calloc(n, 1);
    if (!alive)
        abort();
    size_t i = 0;
    while (i < 2 * n) {
        s128 x = ev[i].at;
        for (; i < 2 * n && ev[i].at == x; i++) {
            if (ev[i].start) {
                alive[ev[i].idx] = true;
                heap_push(heap, &hn, ev[i].idx);
            } else {
                alive[ev[i].idx] = false;
            }
        }
        while (hn && !alive[heap[0]])
            heap_pop(heap, &hn);
        if (i == 2 * n || !hn)
            continue;
        seg_emit(ss, x, ev[i].at, &ps->v[heap[0]]);
    }
    free(alive);
    free(heap);
    free(ev);
}

FlatView *
flatview_render(MemoryRegion *root)
{
    Pieces ps = { 0 };
    Segs ss = { 0 };
    render(&ps, root, 0, 0, (s128)1 << 64, false);
    resolve(&ps, &ss);

    FlatView *fv = calloc(1, sizeof(*fv));
    if (!fv)
        abort();
    fv->root = root;
    fv->nr = (unsigned)ss.n;
    fv->starts = xrealloc(NULL, ss.n * sizeof(hwaddr));
    fv->ranges = aligned_alloc(64, ((ss.n ? ss.n : 1) * sizeof(FlatRange) + 63) & ~(size_t)63);
    if (!fv->ranges)
        abort();
    size_t nioev = 0;
    for (size_t i = 0; i < ss.n; i++)
        nioev += ss.v[i].p->mr->ioeventfd_nb;
    fv->ioev_pool = nioev ? xrealloc(NULL, nioev * sizeof(MemoryRegionIoeventfd)) : NULL;
    size_t pool = 0;
    for (size_t i = 0; i < ss.n; i++) {
        const Seg *s = &ss.v[i];
        MemoryRegion *mr = s->p->mr;
        FlatRange *fr = &fv->ranges[i];
        memset(fr, 0, sizeof(*fr));
        fr->start = (hwaddr)s->lo;
        fr->last = (hwaddr)(s->hi - 1);
        fr->mr = mr;
        fr->offset_in_region = (hwaddr)(s->lo - s->p->base);
        fr->ops = mr->ops;
        fr->opaque = mr->opaque;
        fr->ram_device = mr->ram_device && mr->ram_block;
        fr->readonly = s->p->readonly;
        fr->romd = mr->rom_device && mr->romd_mode;
        fr->nonvolatile = mr->nonvolatile;
        fr->flush_coalesced = mr->flush_coalesced_mmio;
        fr->global_locking = mr->global_locking;
        fr->dirty_log_mask = memory_region_get_dirty_log_mask(mr);
        if (mr->ram_block && mr->ram_block->host)
            fr->host = mr->ram_block->host + fr->offset_in_region;
        bool plain_ram = mr->ram && !mr->ram_device && fr->host;
        fr->direct_read = plain_ram || (fr->romd && fr->host);
        fr->direct_write = plain_ram && !fr->readonly;
        fr->ignore_write = (mr->ram && fr->readonly) || (mr->rom_device && fr->readonly);
        fr->coalesced_gen = mr->coalesced_gen;
        fr->has_coalesced = mr->coalesced != NULL;
        if (mr->ioeventfd_nb) {
            fr->ioev = &fv->ioev_pool[pool];
            fr->nr_ioev = mr->ioeventfd_nb;
            memcpy(&fv->ioev_pool[pool], mr->ioeventfds, mr->ioeventfd_nb * sizeof(MemoryRegionIoeventfd));
            pool += mr->ioeventfd_nb;
        }
        fv->starts[i] = fr->start;
    }
    free(ss.v);
    free(ps.v);
    return fv;
}

void
flatview_free(void *p)
{
    FlatView *fv = p;
    if (!fv)
        return;
    free(fv->starts);
    free(fv->ranges);
    free(fv->ioev_pool);
    free(fv);
}

FlatView *
as_view(AddressSpace *as)
{
    return __atomic_load_n(&as->current_map, __ATOMIC_SEQ_CST);
}

static __thread unsigned lookup_hint __attribute__((tls_model("initial-exec")));

const FlatRange *
flatview_lookup(FlatView *fv, hwaddr addr)
{
    unsigned n = fv->nr;
    if (!n)
        return NULL;
    /* Per-thread last hit: no shared cache line is written on the read path. Only an index is kept, checked
     * against the view it is used with, so a stale one is merely a miss. */
    unsigned h = lookup_hint;
    const FlatRange *fr;
    if (h < n) {
        fr = &fv->ranges[h];
        if (addr - fr->start <= fr->last - fr->start)
            return fr;
    }
    const hwaddr *s = fv->starts;
    unsigned lo = 0, len = n;
    while (len > 1) {
        unsigned half = len / 2;
        lo = s[lo + half] <= addr ? lo + half : lo;
        len -= half;
    }
    fr = &fv->ranges[lo];
    if (addr < fr->start || addr > fr->last)
        return NULL;
    lookup_hint = lo;
    return fr;
}

void
section_from_range(MemoryRegionSection *s, AddressSpace *as, FlatView *fv, const FlatRange *fr)
{
    s->mr = fr->mr;
    s->fv = fv;
    s->address_space = as;
    s->offset_within_region = fr->offset_in_region;
    s->size = (Int128)((u128)fr->last - fr->start + 1);
    s->offset_within_address_space = fr->start;
    s->readonly = fr->readonly;
}

/* ---- listeners ---- */

typedef struct LSet {
    MemoryListener *v[64];
    MemoryListener **p;
    unsigned n;
} LSet;

/* Listeners interested in @as (all when @as is NULL), ascending priority. */
static void lset_get(LSet *ls, AddressSpace *as)
{
    unsigned n = 0;
    for (MemoryListener *l = mem_listeners; l; l = l->link_next)
        if (!as || !l->address_space || l->address_space == as)
            n++;
    ls->p = n <= 64 ? ls->v : xrealloc(NULL, n * sizeof(*ls->p));
    ls->n = 0;
    for (MemoryListener *l = mem_listeners; l; l = l->link_next)
        if (!as || !l->address_space || l->address_space == as)
            ls->p[ls->n++] = l;
}

static void lset_put(LSet *ls)
{
    if (ls->p != ls->v)
        free(ls->p);
}

#define FWD(ls, l) for (unsigned _i = 0; _i < (ls)->n && ((l) = (ls)->p[_i], 1); _i++)
#define REV(ls, l) for (unsigned _i = (ls)->n; _i-- > 0 && ((l) = (ls)->p[_i], 1);)

static void coalesced_add(MemoryListener *l, MemoryRegionSection *s, const FlatRange *fr)
{
    if (!l->coalesced_mmio_add)
        return;
    for (const CoalescedMemoryRange *c = fr->mr->coalesced; c; c = c->next) {
        /* intersect [c->addr, c->addr+size) with the range's window of mr */
        u128 a = c->addr, b = (u128)c->addr + c->size;
        u128 wa = fr->offset_in_region, wb = wa + ((u128)fr->last - fr->start + 1);
        if (a < wa)
            a = wa;
        if (b > wb)
            b = wb;
        if (a >= b)
            continue;
        l->coalesced_mmio_add(l, s, fr->start + (hwaddr)(a - wa), (hwaddr)(b - a));
    }
}

static void coalesced_del(MemoryListener *l, MemoryRegionSection *s, const FlatRange *fr)
{
    if (l->coalesced_mmio_del && fr->has_coalesced)
        l->coalesced_mmio_del(l, s, fr->start, fr->last - fr->start + 1);
}

static bool range_equal(const FlatRange *a, const FlatRange *b)
{
    return a->start == b->start && a->last == b->last && a->mr == b->mr &&
           a->offset_in_region == b->offset_in_region && a->readonly == b->readonly && a->romd == b->romd &&
           a->nonvolatile == b->nonvolatile;
}

static void range_added(LSet *ls, AddressSpace *as, FlatView *fv, const FlatRange *fr)
{
    MemoryListener *l;
    MemoryRegionSection s;
    section_from_range(&s, as, fv, fr);
    FWD(ls, l) {
        if (l->region_add)
            l->region_add(l, &s);
        coalesced_add(l, &s, fr);
    }
}

static void range_removed(LSet *ls, AddressSpace *as, FlatView *fv, const FlatRange *fr)
{
    MemoryListener *l;
    MemoryRegionSection s;
    section_from_range(&s, as, fv, fr);
    REV(ls, l) {
        coalesced_del(l, &s, fr);
        if (l->region_del)
            l->region_del(l, &s);
    }
}

static void range_kept(LSet *ls, AddressSpace *as, FlatView *fv, const FlatRange *o, const FlatRange *n)
{
    MemoryListener *l;
    MemoryRegionSection s;
    section_from_range(&s, as, fv, n);
    FWD(ls, l) if (l->region_nop) l->region_nop(l, &s);
    if (o->dirty_log_mask != n->dirty_log_mask) {
        if (n->dirty_log_mask & ~o->dirty_log_mask)
            FWD(ls, l) if (l->log_start) l->log_start(l, &s, o->dirty_log_mask, n->dirty_log_mask);
        if (o->dirty_log_mask & ~n->dirty_log_mask)
            REV(ls, l) if (l->log_stop) l->log_stop(l, &s, o->dirty_log_mask, n->dirty_log_mask);
    }
    if (o->coalesced_gen != n->coalesced_gen || o->has_coalesced != n->has_coalesced) {
        REV(ls, l) coalesced_del(l, &s, o);
        FWD(ls, l) coalesced_add(l, &s, n);
    }
}

/* ---- ioeventfds as seen in an address space ---- */

static int cmp_ioev(const void *a, const void *b)
{
    const MemoryRegionIoeventfd *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    if (x->match_data != y->match_data)
        return x->match_data < y->match_data ? -1 : 1;
    if (x->data != y->data)
        return x->data < y->data ? -1 : 1;
    if (x->e != y->e)
        return (uintptr_t)x->e < (uintptr_t)y->e ? -1 : 1;
    return 0;
}

/* Every ioeventfd visible in @fv, at its address-space address, sorted. */
static MemoryRegionIoeventfd *as_ioeventfds(FlatView *fv, int *np)
{
    MemoryRegionIoeventfd *v = NULL;
    size_t n = 0, cap = 0;
    for (unsigned i = 0; i < fv->nr; i++) {
        const FlatRange *fr = &fv->ranges[i];
        for (unsigned k = 0; k < fr->nr_ioev; k++) {
            const MemoryRegionIoeventfd *e = &fr->ioev[k];
            u128 off = e->addr;
            if (off < fr->offset_in_region || off - fr->offset_in_region > (u128)fr->last - fr->start)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[n] = *e;
            v[n].addr = fr->start + (hwaddr)(off - fr->offset_in_region);
            n++;
        }
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_ioev);
    *np = (int)n;
    return v;
}

static void ioev_section(MemoryRegionSection *s, AddressSpace *as, FlatView *fv, const MemoryRegionIoeventfd *e)
{
    const FlatRange *fr = flatview_lookup(fv, e->addr);
    s->mr = e->mr;
    s->fv = fv;
    s->address_space = as;
    s->offset_within_region = fr ? fr->offset_in_region + (e->addr - fr->start) : 0;
    s->size = int128_make64(e->size);
    s->offset_within_address_space = e->addr;
    s->readonly = false;
}

static void ioev_call(LSet *ls, AddressSpace *as, FlatView *fv, const MemoryRegionIoeventfd *e, bool add)
{
    MemoryListener *l;
    MemoryRegionSection s;
    ioev_section(&s, as, fv, e);
    if (add) {
        FWD(ls, l) if (l->eventfd_add) l->eventfd_add(l, &s, e->match_data, e->data, e->e);
    } else {
        REV(ls, l) if (l->eventfd_del) l->eventfd_del(l, &s, e->match_data, e->data, e->e);
    }
}

static void ioev_update(LSet *ls, AddressSpace *as, FlatView *oldv, FlatView *newv)
{
    int nn;
    MemoryRegionIoeventfd *nv = as_ioeventfds(newv, &nn);
    MemoryRegionIoeventfd *ov = as->ioeventfds;
    int on = as->ioeventfd_nb, i = 0, j = 0;
    while (i < on || j < nn) {
        int c = i == on ? 1 : j == nn ? -1 : cmp_ioev(&ov[i], &nv[j]);
        if (c < 0)
            ioev_call(ls, as, oldv, &ov[i++], false);
        else if (c > 0)
            ioev_call(ls, as, newv, &nv[j++], true);
        else
            i++, j++;
    }
    free(ov);
    as->ioeventfds = nv;
    as->ioeventfd_nb = nn;
}

/* Tell listeners how @as changed from @o to @n. */
static void topology_diff(LSet *ls, AddressSpace *as, FlatView *o, FlatView *n)
{
    for (int adding = 0; adding < 2; adding++) {
        unsigned i = 0, j = 0;
        while (i < o->nr || j < n->nr) {
            const FlatRange *a = i < o->nr ? &o->ranges[i] : NULL;
            const FlatRange *b = j < n->nr ? &n->ranges[j] : NULL;
            if (a && (!b || a->start < b->start || (a->start == b->start && !range_equal(a, b)))) {
                if (!adding)
                    range_removed(ls, as, o, a);
                i++;
            } else if (a && b && range_equal(a, b)) {
                if (adding)
                    range_kept(ls, as, n, a, b);
                i++, j++;
            } else {
                if (adding)
                    range_added(ls, as, n, b);
                j++;
            }
        }
    }
}

void
flatview_publish_all(void)
{
    LSet all;
    MemoryListener *l;
    lset_get(&all, NULL);
    FWD(&all, l) if (l->begin) l->begin(l);
    for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next) {
        FlatView *o = as_view(as);
        FlatView *n = flatview_render(as->root);
        __atomic_store_n(&as->current_map, n, __ATOMIC_SEQ_CST);
        LSet ls;
        lset_get(&ls, as);
        topology_diff(&ls, as, o, n);
        ioev_update(&ls, as, o, n);
        lset_put(&ls);
        mem_retire(o, flatview_free);
    }
    FWD(&all, l) if (l->commit) l->commit(l);
    lset_put(&all);
}

void
flatview_listener_replay(MemoryListener *l, AddressSpace *as, bool add)
{
    LSet one = { .n = 1 };
    one.v[0] = l;
    one.p = one.v;
    FlatView *fv = as_view(as);
    if (add) {
        for (unsigned i = 0; i < fv->nr; i++)
            range_added(&one, as, fv, &fv->ranges[i]);
        for (int k = 0; k < as->ioeventfd_nb; k++)
            ioev_call(&one, as, fv, &as->ioeventfds[k], true);
    } else {
        for (int k = as->ioeventfd_nb; k-- > 0;)
            ioev_call(&one, as, fv, &as->ioeventfds[k], false);
        for (unsigned i = fv->nr; i-- > 0;)
            range_removed(&one, as, fv, &fv->ranges[i]);
    }
}
