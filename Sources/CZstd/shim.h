#ifndef OUTPOST_CZSTD_SHIM_H
#define OUTPOST_CZSTD_SHIM_H
#include <zstd.h>

// ZSTD_CONTENTSIZE_UNKNOWN / _ERROR are macros built from casts of -1 and -2 that Swift does
// not import; these functions hand the same values over.
static inline unsigned long long czstd_contentsize_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long czstd_contentsize_error(void) { return ZSTD_CONTENTSIZE_ERROR; }

#endif
