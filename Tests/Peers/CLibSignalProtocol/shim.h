#ifndef HUSH_CLIBSIGNALPROTOCOL_SHIM_H
#define HUSH_CLIBSIGNALPROTOCOL_SHIM_H
/*
 * Debian's libsignal-protocol-c 2.3.3 (package libsignal-protocol-c-dev), test-only.
 *
 * Only the C target CSignalPeer includes these headers. Swift code must not import this
 * module: libsignal's reference counting (SIGNAL_UNREF) is a statement macro Swift cannot
 * import, so libsignal objects stay inside CSignalPeer, which exposes a plain-C API.
 *
 * The headers include each other by bare name ("curve.h"), which is why pkg-config adds
 * -I/usr/include/signal and why they are included here by bare name too.
 */
#include <signal_protocol.h>
#include <key_helper.h>
#include <curve.h>
#include <ratchet.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <session_record.h>
#include <session_state.h>
#include <group_session_builder.h>
#include <group_cipher.h>
#include <sender_key_record.h>
#include <sender_key_state.h>
#include <sender_key.h>
#endif
