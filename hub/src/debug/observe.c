/* Two CPU observers behind one. */
#include "observe.h"

static void pair_trap(void *opaque, const hub_cpu_trap_info *t)
{
    hub_observer_pair *p = opaque;
    if ((p->a->events & HUB_CPU_OBS_TRAP) && p->a->trap)
        p->a->trap(p->oa, t);
    if ((p->b->events & HUB_CPU_OBS_TRAP) && p->b->trap)
        p->b->trap(p->ob, t);
}

static bool wants_access(const hub_cpu_observer *o, const hub_cpu_access_info *a)
{
    return o->access && ((o->events & HUB_CPU_OBS_MMIO) || (a->error && (o->events & HUB_CPU_OBS_MMIO_ERROR)));
}

static void pair_access(void *opaque, const hub_cpu_access_info *a, uint64_t pc, unsigned priv)
{
    hub_observer_pair *p = opaque;
    if (wants_access(p->a, a))
        p->a->access(p->oa, a, pc, priv);
    if (wants_access(p->b, a))
        p->b->access(p->ob, a, pc, priv);
}

static void pair_block(void *opaque, uint64_t pc, uint32_t size, unsigned priv)
{
    hub_observer_pair *p = opaque;
    if ((p->a->events & HUB_CPU_OBS_BLOCK) && p->a->block)
        p->a->block(p->oa, pc, size, priv);
    if ((p->b->events & HUB_CPU_OBS_BLOCK) && p->b->block)
        p->b->block(p->ob, pc, size, priv);
}

static void pair_unimp(void *opaque, unsigned csr, uint64_t pc, unsigned priv)
{
    hub_observer_pair *p = opaque;
    if ((p->a->events & HUB_CPU_OBS_UNIMP) && p->a->unimp_csr)
        p->a->unimp_csr(p->oa, csr, pc, priv);
    if ((p->b->events & HUB_CPU_OBS_UNIMP) && p->b->unimp_csr)
        p->b->unimp_csr(p->ob, csr, pc, priv);
}

const hub_cpu_observer *
hub_observer_pair_init(hub_observer_pair *p, const hub_cpu_observer *a, void *oa, const hub_cpu_observer *b,
                       void *ob, void **opaque)
{
    if (!a || !b) {
        *opaque = a ? oa : ob;
        return a ? a : b;
    }
    *opaque = p;
    *p = (hub_observer_pair){ .a = a, .b = b, .oa = oa, .ob = ob };
    p->obs = (hub_cpu_observer){ .events = a->events | b->events, .trap = pair_trap, .access = pair_access,
                                 .block = pair_block, .unimp_csr = pair_unimp };
    return &p->obs;
}
