/* ember/config.h — device.ini as an object: load it from a file or a string, or build
 * it in code, then hand it to em_context_create_with(). Errors of these calls (which
 * have no context yet) are reported through em_last_error(). */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <ember/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_config em_config;

/* An empty configuration: backend cpu, device 0. NULL only if out of memory. */
EMBER_API em_config *em_config_create(void);
EMBER_API void em_config_free(em_config *cfg);

/* Parse an ini file / text into cfg (keys already set are an error: duplicate key).
 * The file name (or `name` for text) and line numbers appear in every message. */
EMBER_API em_status em_config_load_file(em_config *cfg, const char *path);
EMBER_API em_status em_config_load_string(em_config *cfg, const char *text, const char *name);

/* Set or replace one key, as if it were written in the file. */
EMBER_API em_status em_config_set(em_config *cfg, const char *section, const char *key,
                                  const char *value);
/* The value of a key, or NULL if unset. Valid until the key is set again or cfg freed. */
EMBER_API const char *em_config_get(const em_config *cfg, const char *section, const char *key);

/* Which file a config would be loaded from by em_context_create(ctx, NULL), following
 * the documented precedence (see README). Writes a report of every candidate and whether
 * it exists into `report` (may be NULL) and returns the chosen path, or NULL when the
 * built-in default applies. Both strings are owned by the caller (free()). */
EMBER_API char *em_config_locate(char **report);

#ifdef __cplusplus
}
#endif
#endif
