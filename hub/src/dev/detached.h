/*
 * For the fuzzer (tests/fuzz, detached.c): a device with no process whose channel is a ZeroMQ PAIR bound at
 * @endpoint (e.g. inproc://x; connect to it with plx_chan_zmq_connect()), @n_irqs lines (even ones
 * connected); frames fed to it are decoded, checked and served as hub_devmgr_poll() would serve them after the
 * handshake. hub_dev_feed_declaration() runs the handshake's checks of a Declare.
 */
#ifndef PLEXUS_HUB_DEV_DETACHED_H
#define PLEXUS_HUB_DEV_DETACHED_H

#include "dev/device.h"

hub_device *hub_dev_new_detached(hub_devmgr *m, const char *name, unsigned n_irqs, const char *endpoint);
int hub_dev_feed(hub_device *d, const void *frame, size_t len);
int hub_dev_feed_declaration(hub_device *d, const void *frame, size_t len);
void hub_dev_free_detached(hub_device *d);

#endif
