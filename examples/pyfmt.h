/* examples/pyfmt.h — print a double the way Python's repr() does (shortest round-trip
 * digits, fixed notation for exponents -4..15, ".0" on integral values), so the examples'
 * "t loss" lines read exactly like the seed notebook's. Header-only, for the examples. */
#ifndef EMBER_EXAMPLES_PYFMT_H
#define EMBER_EXAMPLES_PYFMT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void py_repr(double v, char *out, size_t n)
{
    if (isnan(v)) {
        snprintf(out, n, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, n, v > 0 ? "inf" : "-inf");
        return;
    }
    char buf[64];
    int p = 1;
    for (; p <= 17; p++) {   /* shortest precision that round-trips */
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    int e = v == 0 ? 0 : atoi(strchr(buf, 'e') + 1);
    if (e < -4 || e >= 16) {
        /* Python: mantissa digits without trailing ".0", exponent with sign and >= 2 digits */
        snprintf(out, n, "%s", buf);
        return;
    }
    int decimals = p - 1 - e;
    snprintf(out, n, "%.*f", decimals > 0 ? decimals : 0, v);
    if (!strchr(out, '.'))
        strncat(out, ".0", n - strlen(out) - 1);
}

#endif
