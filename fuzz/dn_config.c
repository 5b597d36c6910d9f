/*
 * Fuzz target: the data node's YAML configuration (datanode/config.c,
 * plinth_dn_config_load()), through libyaml's document loader. See
 * config_shim.h for how the input becomes a file and why getaddrinfo is
 * numeric-only here.
 *
 * Checked: a load that succeeds has every required key and values inside
 * their documented bounds; a load that fails leaves nothing allocated and
 * says why in a NUL-terminated message.
 */

#include "config_shim.h"
#include "blockfile.h"
#include "config.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               err[512];
    plinth_dn_config   cf;

    memset(err, 'x', sizeof(err));

    if (plinth_dn_config_load(fuzz_config_file(data, size), &cf, err,
                              sizeof(err))
        == 0)
    {
        FUZZ_ASSERT(cf.node_id >= 1 && cf.node_id <= UINT32_MAX);
        FUZZ_ASSERT(cf.listen != NULL && cf.data_dir != NULL
                    && cf.cluster_secret_file != NULL);
        FUZZ_ASSERT(cf.listen_addrlen > 0
                    && cf.listen_addrlen <= sizeof(cf.listen_addr));
        FUZZ_ASSERT(blockfile_block_size_valid(cf.block_size));
        FUZZ_ASSERT(cf.log_level <= 3);
        plinth_dn_config_free(&cf);

    } else {
        FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_ASSERT(cf.listen == NULL && cf.data_dir == NULL
                    && cf.pid_file == NULL
                    && cf.cluster_secret_file == NULL);
    }

    return 0;
}
