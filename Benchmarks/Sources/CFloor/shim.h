// The primitive calls the floor benchmarks make directly, bypassing Hush entirely.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
#include <sodium.h>
