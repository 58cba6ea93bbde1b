/* libcrypto is the reference our own SHA/HMAC/PBKDF2 are tested against; the module never links it. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
