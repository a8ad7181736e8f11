/*
 * migrations.h — versioned schema of the platform and tenant databases.
 *
 * Each list is append-only: step i moves a database from version i to i+1
 * (SQLite keeps the version in PRAGMA user_version). Never edit a step that
 * has shipped; add one.
 */
#ifndef ODX_MIGRATIONS_H
#define ODX_MIGRATIONS_H

#include <stddef.h>

#include "store/store.h"

/* The steps for a scope; *n receives their count. */
const char *const *migrations_for(enum store_scope_kind scope, size_t *n);

#endif
