#ifndef HUSH_CSODIUM_SHIM_H
#define HUSH_CSODIUM_SHIM_H
// libsodium, as Hush uses it. Only the public header; Hush calls sodium_init() once
// (see HushCrypto/Sodium.swift) before any other function.
#include <sodium.h>
#endif
