/* SPDX-License-Identifier: MIT */
/*
 * echod_faults.c - the policy's words about fault modes (faults.h): the
 * part of the SIGUSR1 line that counts each fault fired.
 */
#include "echod_internal.h"

#include <inttypes.h>

void echod_faults_print_stats(const struct echod *d, FILE *f)
{
    fprintf(f, "; faults (seed %" PRIu64 ")", d->fault_seed);
    for (int k = 0; k < FAULT_KINDS; k++)
        fprintf(f, "%s %s %" PRIu64, k ? "," : "", fault_names[k], d->faults_fired[k]);
}
