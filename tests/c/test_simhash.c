/* test_simhash.c: fingerprints are stable, ignore case and punctuation, stay close for
 * a small edit of a long text and far apart for unrelated texts. */
#include "simhash.h"

#include <stdio.h>
#include <string.h>

static int failures;
#define EXPECT(c) do { if (!(c)) { printf("line %d: %s\n", __LINE__, #c); failures++; } } while (0)

static uint64_t fp(mg_analyzer *a, const char *s)
{
    uint64_t h = 0;
    const char *err;
    EXPECT(mg_simhash_text(a, s, strlen(s), 3, &h, &err) == MG_OK);
    return h;
}

int main(void)
{
    const char *err = NULL;
    mg_analyzer *a = mg_analyzer_new(NULL, 0, &err);
    const char *base =
        "an experimental study of a wing in a propeller slipstream was made in order to "
        "determine the spanwise distribution of the lift increase due to slipstream at "
        "different angles of attack of the wing and at different free stream to slipstream "
        "velocity ratios. the results were intended in part as an evaluation basis for "
        "different theoretical treatments of this problem. the comparative span loading "
        "curves, together with supporting evidence, showed that a substantial part of the "
        "lift increment produced by the slipstream was due to a destalling or boundary-layer "
        "control effect. the integrated remaining lift increment, after subtracting this "
        "destalling lift, was found to agree well with a potential flow theory.";
    char edited[2048];
    strcpy(edited, base);
    memcpy(strstr(edited, "substantial"), "significant", 11);
    const char *other =
        "simple shear flows of a viscous incompressible fluid between parallel plates are "
        "examined for their stability to small disturbances; the critical reynolds number "
        "is found from the orr-sommerfeld equation by a numerical method and compared with "
        "measurements made in a water channel under carefully controlled conditions.";

    uint64_t h = fp(a, base);
    EXPECT(h == fp(a, base));
    EXPECT(fp(a, "The Quick, brown FOX!") == fp(a, "the quick brown fox"));
    EXPECT(fp(a, "the quick brown fox") == 0x2349248450980084ull);
    int near = mg_simhash_distance(h, fp(a, edited));
    int far = mg_simhash_distance(h, fp(a, other));
    printf("one word changed: %d bits; unrelated: %d bits\n", near, far);
    EXPECT(near > 0 && near <= 8);
    EXPECT(far >= 20);
    EXPECT(fp(a, "") == 0 && fp(a, " ... ") == 0);
    EXPECT(fp(a, "single") != 0);
    EXPECT(mg_simhash_distance(0, ~0ull) == 64 && mg_simhash_distance(5, 5) == 0);
    uint64_t out;
    EXPECT(mg_simhash_text(a, "x", 1, 0, &out, &err) == MG_ERROR && strcmp(err, "shingle must be within [1, 16]") == 0);
    mg_analyzer_free(a);
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures != 0;
}
