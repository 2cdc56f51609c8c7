/* tests/fuzz/fuzz_config.c — libFuzzer target: device.ini text -> parse -> resolve. Any
 * input must give EM_OK or an error status with a message naming the place; never a crash,
 * a hang or a leak. Links the core statically (make fuzz), so it reaches the internals. */
#include "config.h"
#include "../../core/internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    em_config *cfg = em_config_create();
    if (!cfg) {
        free(text);
        return 0;
    }
    em_status st = em_config_load_string(cfg, text, "fuzz.ini");
    if (st != EM_OK && !em_last_error()[0])
        abort();   /* an error without a message */
    if (st == EM_OK) {
        em__resolved res;
        memset(&res, 0, sizeof res);
        st = em__config_resolve(cfg, &res, false);
        if (st != EM_OK && !em_last_error()[0])
            abort();
        em__resolved_free(&res);
        (void)em_config_get(cfg, "device", "backend");
        /* in-code edits on top of parsed text, with pieces of the input as names */
        size_t cut = size / 3;
        char sec[32], key[32];
        snprintf(sec, sizeof sec, "%.*s", (int)(cut < 31 ? cut : 31), text);
        snprintf(key, sizeof key, "%.*s", (int)(size - cut < 31 ? size - cut : 31), text + cut);
        if (em_config_set(cfg, sec, key, text + size / 2) != EM_OK && !em_last_error()[0])
            abort();
        em_config *copy = em__config_clone(cfg);
        em_config_free(copy);
    }
    em_config_free(cfg);
    free(text);
    return 0;
}
