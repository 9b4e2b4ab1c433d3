/* The channel to a device's process (link.c): open, send (held posted writes go first), wait, close. */
#ifndef PLEXUS_HUB_DEV_LINK_H
#define PLEXUS_HUB_DEV_LINK_H

#include "dev/device.h"

/* Bind the device's ZeroMQ channel (an ipc endpoint in the run dir, or cfg->endpoint: tcp:// over CURVE, or
 * loopback only without the device's key) and decide whether it moves to the ring after the handshake. */
int hub_dev_bind_channel(hub_device *d, const hub_device_config *cfg, Error **errp);
/* A tcp device's channel turned peers with other keys away since last asked: say so. */
void hub_dev_check_refused(hub_device *d);

/* Send @env stamped with the virtual time, after the posted writes held for the device. A failed send fails the
 * device. 0 or -errno. */
int hub_dev_send(hub_device *d, Plx__Envelope *env);
/* An Error message, best effort (the handshake refusing a device). */
void hub_dev_send_error(hub_device *d, int code, const char *text);
/* A send to the device returned @r (< 0): fail the device with the reason (unless shutting down). */
void hub_dev_send_failed(hub_device *d, int r);
/* Send the posted writes held for @d. */
void hub_dev_flush(hub_device *d);
/* Words for a channel error @r (< 0) of this device. */
const char *hub_dev_chan_strerror(hub_device *d, int r);
/* Wait up to @timeout_ms for the device's channel: 1 a frame may be there, 2 the process exited (pidfd), 0
 * nothing, -errno. */
int hub_dev_wait(hub_device *d, int timeout_ms);

#endif
