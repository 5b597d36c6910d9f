/*
 * For the libFuzzer targets that parse with libxml2 (xml, lifecycle,
 * batch): the parser initialised once and its error messages silenced
 * (a malformed input is the normal case, not something to print).
 * Include it in one target's .c only: it defines LLVMFuzzerInitialize.
 */

#ifndef PLINTH_FUZZ_LIBXML_H
#define PLINTH_FUZZ_LIBXML_H

#include <libxml/parser.h>
#include <libxml/xmlerror.h>


static void
fuzz_libxml_silent(void *ctx, const char *msg, ...)
{
    (void) ctx;
    (void) msg;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, fuzz_libxml_silent);

    return 0;
}

#endif /* PLINTH_FUZZ_LIBXML_H */
