#ifndef OUTPOST_CSQLITE_SHIM_H
#define OUTPOST_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro that casts -1 to a function pointer; Swift cannot import it,
// so it is handed over as a function.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }

// SQLITE_STATIC (a null destructor) for symmetry, so callers never spell the cast themselves.
static inline sqlite3_destructor_type csqlite_static(void) { return SQLITE_STATIC; }

#endif
