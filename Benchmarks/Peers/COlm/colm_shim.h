// Debian's libolm (apt libolm-dev): the Olm double ratchet and Megolm, with its own crypto.
#ifndef COLM_SHIM_H
#define COLM_SHIM_H

#include <olm/olm.h>
#include <olm/inbound_group_session.h>
#include <olm/outbound_group_session.h>

#endif
