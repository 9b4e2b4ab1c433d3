/* What a device declares (declare.c): checked against the protocol's limits, compared across restarts, and
 * matched with the machine's configuration (placement, IRQ lines, properties, RAM grants). */
#ifndef PLEXUS_HUB_DEV_DECLARE_H
#define PLEXUS_HUB_DEV_DECLARE_H

#include "dev/device.h"

/* A printable name of 1..PLX_MAX_NAME bytes. */
bool hub_dev_name_ok(const char *s);
/* Take the regions, IRQ lines and properties of @dc into @d (freed by hub_dev_decl_free, also after a failure). */
int hub_dev_decl_take(hub_device *d, const Plx__Declare *dc, Error **errp);
void hub_dev_decl_free(hub_device *d);
/* Whether @b declares the regions and IRQ lines @a did (a restarted device must: its regions stay mapped). */
bool hub_dev_decl_same(const hub_device *a, const hub_device *b);
/* Place the declared regions, connect the IRQ lines and check properties and RAM grants as @cfg says. */
int hub_dev_decl_check(hub_device *d, const hub_device_config *cfg, Error **errp);
/* Whether @cfg grants the device RAM block @b. */
bool hub_dev_ram_granted(const hub_device_config *cfg, const hub_ram_block *b);

#endif
