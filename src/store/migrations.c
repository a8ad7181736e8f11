/* migrations.c — see migrations.h. Times are INTEGER nanoseconds since the epoch. */
#include "store/migrations.h"

/* clang-format off: a table reads best as one */
static const char *const platform_steps[] = {
    /* 1: tenants, platform administrators, and the directories that map a
     * credential to its tenant (they hold no tenant data beyond that). */
    "CREATE TABLE tenants ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  quota_cpu_millicores INTEGER NOT NULL,"
    "  quota_memory_mb INTEGER NOT NULL,"
    "  quota_containers INTEGER NOT NULL,"
    "  quota_storage_mb INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active','deleting'))"
    ") STRICT;"
    "CREATE TABLE platform_admins ("
    "  id TEXT PRIMARY KEY,"
    "  email TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE login_directory ("
    "  email TEXT PRIMARY KEY,"
    "  tenant_id TEXT,"
    "  user_id TEXT NOT NULL"
    ") STRICT;"
    "CREATE TABLE api_key_directory ("
    "  key_id TEXT PRIMARY KEY,"
    "  tenant_id TEXT NOT NULL"
    ") STRICT;"
    "CREATE TABLE token_families ("
    "  id TEXT PRIMARY KEY,"
    "  tenant_id TEXT,"
    "  user_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  revoked_reason TEXT"
    ") STRICT;"
    "CREATE INDEX token_families_user ON token_families(user_id);"
    "CREATE TABLE refresh_tokens ("
    "  token_hash BLOB PRIMARY KEY,"
    "  family_id TEXT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,"
    "  issued_at INTEGER NOT NULL,"
    "  used_at INTEGER"
    ") STRICT;"
    "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);",
    /* 2: users whose role changed or who were deleted, for access tokens still out there. */
    "CREATE TABLE revoked_subjects ("
    "  subject_id TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL," /* '' = deleted */
    "  changed_at INTEGER NOT NULL"
    ") STRICT;",
    /* 3: nodes (docs/nodes.md): single-use enrollment tokens, stored hashed,
     * and the node inventory; a revoked node keeps its row (revoked_at) so
     * its id is never reused and its certificate stays refused. */
    "CREATE TABLE enrollment_tokens ("
    "  id TEXT PRIMARY KEY,"
    "  secret_hash BLOB NOT NULL,"
    "  node_name TEXT,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER,"
    "  used_by TEXT"
    ") STRICT;"
    "CREATE TABLE nodes ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  enrolled_at INTEGER NOT NULL,"
    "  cert_not_after INTEGER NOT NULL,"
    "  cert_fingerprint TEXT NOT NULL,"
    "  last_seen_at INTEGER,"
    "  status TEXT," /* the last heartbeat's JSON: capacity, usage, versions */
    "  revoked_at INTEGER"
    ") STRICT;"
    "CREATE UNIQUE INDEX nodes_live_name ON nodes(name) WHERE revoked_at IS NULL;",
    /* 4: secrets (docs/secrets.md): the key-encryption key's id and check value
     * (HMAC-SHA256 of a constant), never the key; 'next' only while a KEK
     * rotation is unfinished. */
    "CREATE TABLE secrets_kek ("
    "  kek_id TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL UNIQUE CHECK (role IN ('current','next')),"
    "  check_mac BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;",
};

static const char *const tenant_steps[] = {
    /* 1: users, API keys, and the containers table the quota usage and the
     * delete-tenant check read (filled by the scheduler and agents). */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  email TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('admin','operator','developer','readonly')),"
    "  password_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('admin','operator','developer','readonly')),"
    "  secret_hash BLOB NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER"
    ") STRICT;"
    "CREATE TABLE containers ("
    "  id TEXT PRIMARY KEY,"
    "  deployment TEXT NOT NULL,"
    "  node_id TEXT,"
    "  state TEXT NOT NULL,"
    "  cpu_millicores INTEGER NOT NULL DEFAULT 0,"
    "  memory_mb INTEGER NOT NULL DEFAULT 0,"
    "  storage_mb INTEGER NOT NULL DEFAULT 0"
    ") STRICT;",
    /* 2: custom permission sets (SPEC §3) and who holds them (users and API keys). */
    "CREATE TABLE permission_sets ("
    "  name TEXT PRIMARY KEY,"
    "  rules TEXT NOT NULL," /* JSON array of {effect, method, path}, validated on write */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE permission_set_members ("
    "  subject_id TEXT NOT NULL,"
    "  set_name TEXT NOT NULL REFERENCES permission_sets(name) ON DELETE CASCADE,"
    "  PRIMARY KEY (subject_id, set_name)"
    ") STRICT;",
    /* 3: deployments and their revisions (docs/deployments.md); a deployment
     * keeps its current revision's per-replica resources beside the replica
     * count so the quota sums are one query. Containers gain what the
     * scheduler and the agents' reports fill in. */
    "CREATE TABLE deployments ("
    "  name TEXT PRIMARY KEY,"
    "  revision INTEGER NOT NULL,"
    "  replicas INTEGER NOT NULL,"
    "  cpu_millicores INTEGER NOT NULL,"
    "  memory_mb INTEGER NOT NULL,"
    "  storage_mb INTEGER NOT NULL,"
    "  restart_generation INTEGER NOT NULL DEFAULT 0,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE deployment_revisions ("
    "  deployment TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,"
    "  revision INTEGER NOT NULL,"
    "  template TEXT NOT NULL," /* JSON: image, command, env, resources, writable_paths, user */
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (deployment, revision)"
    ") STRICT;"
    "ALTER TABLE containers ADD COLUMN replica INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE containers ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE containers ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE containers ADD COLUMN desired TEXT NOT NULL DEFAULT 'running';"
    "ALTER TABLE containers ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX containers_deployment ON containers(deployment);",
    /* 4: secrets (docs/secrets.md): the tenant's data key, wrapped by the KEK
     * named by kek_id (AES-256-GCM); generation 1 is the only one so far. */
    "CREATE TABLE secret_data_keys ("
    "  generation INTEGER PRIMARY KEY,"
    "  kek_id TEXT NOT NULL,"
    "  wrapped BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  wrapped_at INTEGER NOT NULL"
    ") STRICT;",
    /* 5: secret values (sealed, one row per version), which deployments may
     * receive each secret, and the rotation policy (docs/secrets.md). */
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  version INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  rotated_at INTEGER NOT NULL,"
    "  rotate_every_s INTEGER," /* NULL: rotated by hand only */
    "  generate_length INTEGER,"
    "  generate_alphabet TEXT"
    ") STRICT;"
    "CREATE TABLE secret_versions ("
    "  name TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  sealed BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (name, version)"
    ") STRICT;"
    "CREATE TABLE secret_grants ("
    "  name TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,"
    "  deployment TEXT NOT NULL,"
    "  PRIMARY KEY (name, deployment)"
    ") STRICT;",
    /* 6: vulnerability scans (docs/scanning.md): one row per scan, its merged
     * result and its diff against the image's previous scan as JSON; the
     * gating policies; the tenant's scan settings; emergency overrides. */
    "CREATE TABLE scans ("
    "  seq INTEGER PRIMARY KEY," /* list order, newest first */
    "  id TEXT NOT NULL UNIQUE,"
    "  image TEXT NOT NULL," /* normalised reference */
    "  digest TEXT,"
    "  status TEXT NOT NULL CHECK (status IN ('queued','running','completed','failed')),"
    "  trigger TEXT NOT NULL CHECK (trigger IN ('manual','import','rescan')),"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  completed_at INTEGER,"
    "  error TEXT,"
    "  engines TEXT NOT NULL DEFAULT '{}',"
    "  summary TEXT,"
    "  result TEXT,"
    "  diff TEXT"
    ") STRICT;"
    "CREATE INDEX scans_image ON scans(image, seq);"
    "CREATE TABLE scan_policies ("
    "  name TEXT PRIMARY KEY,"
    "  body TEXT NOT NULL," /* the policy's JSON (scan/policy.h) */
    "  updated_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE scan_settings ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  rescan_interval_s INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE scan_overrides ("
    "  id TEXT PRIMARY KEY,"
    "  deployment TEXT NOT NULL,"
    "  image TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  justification TEXT NOT NULL,"
    "  verdict TEXT NOT NULL," /* what the policies would have blocked */
    "  created_at INTEGER NOT NULL"
    ") STRICT;",
    /* 7: the gate finds a digest reference's scan by the digest its report gave. */
    "CREATE INDEX scans_digest ON scans(digest, seq);",
};
/* clang-format on */

const char *const *migrations_for(enum store_scope_kind scope, size_t *n)
{
	if (scope == STORE_PLATFORM) {
		*n = sizeof(platform_steps) / sizeof(platform_steps[0]);
		return platform_steps;
	}
	*n = sizeof(tenant_steps) / sizeof(tenant_steps[0]);
	return tenant_steps;
}
