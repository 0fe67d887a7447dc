// Debian's libsignal-protocol-c (apt libsignal-protocol-c-dev). Its headers include each other by
// bare name; pkg-config adds -I/usr/include/signal, and the quoted includes also resolve next to
// each other, so the `signal/` prefix here works either way.
#ifndef CLIBSIGNAL_SHIM_H
#define CLIBSIGNAL_SHIM_H

#include <signal/signal_protocol.h>
#include <signal/key_helper.h>
#include <signal/curve.h>
#include <signal/protocol.h>
#include <signal/session_builder.h>
#include <signal/session_cipher.h>
#include <signal/session_record.h>
#include <signal/session_pre_key.h>
#include <signal/ratchet.h>
#include <signal/group_session_builder.h>
#include <signal/group_cipher.h>
#include <signal/sender_key_record.h>

#endif
