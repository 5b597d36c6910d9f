# Plinth — top-level build.
#   make            build the nginx module, the data node and repaird
#   make run        install dependencies, build, start a local cluster in ./run
#                   (GATEWAYS=2: two gateways behind a load-balancing nginx)
#   make stop       stop the local cluster (data stays in ./run)
#   make test       build and run every test (prove)
#   make test SAN=1 the same with ASan and UBSan, in build-san/
#   make bench      build the load generator and run the benchmark (bench/run)
#   make bench-stripe  a 1 GiB GET from throttled data nodes, unstriped and striped
#   make fuzz       build the libFuzzer targets and run each FUZZ_SECONDS seconds
#   make chaos      the crash-consistency checker for CHAOS_SECONDS (t/96-chaos.t)

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wpointer-arith
PORT     ?= 9000
GATEWAYS ?= 1
RUN_DIR  ?= run

# SAN=1: every C program (nginx with the module, the data node, repaird,
# the unit tests, the bench tools) built with AddressSanitizer and UBSan
# into build-san/, so it never mixes with build/; `make test SAN=1` runs
# the suite on those binaries and fails on any sanitizer report
# (scripts/san-test.sh; README, "Sanitizers").
SAN      ?= 0
# clang, not gcc: gcc 12's UBSan ignores log_path when linked with ASan
# (its reports go to stderr, where a daemon's are lost); clang's honours it.
ifeq ($(SAN),1)
B        := build-san
SAN_CC   ?= clang
CC       := $(SAN_CC)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
CFLAGS   += $(SAN_FLAGS)
else
B        := build
endif

PROTO_C  := $(B)/proto/plinth.pb-c.c
PROTO_H  := $(B)/proto/plinth.pb-c.h

# ngx_plinth_hop.c (pure C, OpenSSL): the internal hop's HMAC, shared by
# the gateway, the data node and repaird so that all sign the same bytes.
HOP_SRCS := ngx_plinth_module/ngx_plinth_hop.c
HOP_HDRS := ngx_plinth_module/ngx_plinth_hop.h

DATANODE_SRCS := $(wildcard datanode/*.c) $(HOP_SRCS)
DATANODE_HDRS := $(wildcard datanode/*.h) $(HOP_HDRS)
DATANODE_LIBS := -lmicrohttpd -lyaml -lprotobuf-c -lxxhash -lcurl -lcrypto -lpthread

REPAIRD_SRCS := $(wildcard repaird/*.c) ngx_plinth_module/ngx_plinth_ring.c $(HOP_SRCS)
REPAIRD_HDRS := $(wildcard repaird/*.h) ngx_plinth_module/ngx_plinth_ring.h $(HOP_HDRS)
REPAIRD_LIBS := -lpq -lcurl -lmicrohttpd -lyaml -lprotobuf-c -lxxhash -lcrypto -lm

UNIT_TESTS := $(B)/unit/test_repaird_config \
              $(B)/unit/test_ring $(B)/unit/test_blockfile \
              $(B)/unit/test_sigv4 $(B)/unit/test_chunked \
              $(B)/unit/test_crc

.PHONY: all lint module datanode repaird proto deps unit test run stop clean bench bench-tools bench-stripe \
        fuzz fuzz-build chaos

all: module datanode repaird

deps:
	./scripts/install-deps.sh

proto: $(PROTO_C)

$(PROTO_C) $(PROTO_H): proto/plinth.proto
	mkdir -p $(B)/proto
	protoc-c --proto_path=proto --c_out=$(B)/proto proto/plinth.proto

module: $(B)/ngx_plinth_module.so

$(B)/ngx_plinth_module.so: config scripts/build-module.sh scripts/nginx-ubsan.ignore $(wildcard ngx_plinth_module/*.[ch]) $(PROTO_C) $(PROTO_H)
	PLINTH_BUILD=$(B) PLINTH_SAN=$(SAN) PLINTH_SAN_CC=$(CC) \
	    PLINTH_SAN_CFLAGS="$(SAN_FLAGS) -g -O1" \
	    PLINTH_SAN_LDFLAGS="$(SAN_FLAGS)" ./scripts/build-module.sh

datanode: $(B)/plinth-datanode

$(B)/plinth-datanode: $(DATANODE_SRCS) $(DATANODE_HDRS) $(PROTO_C) $(PROTO_H)
	$(CC) $(CFLAGS) $(WARN) -I$(B)/proto -Idatanode -Ingx_plinth_module -o $@ \
	    $(DATANODE_SRCS) $(PROTO_C) $(DATANODE_LIBS)

# repaird reuses the gateway's ring (pure C), so both place alike.
repaird: $(B)/plinth-repaird

$(B)/plinth-repaird: $(REPAIRD_SRCS) $(REPAIRD_HDRS) $(PROTO_C) $(PROTO_H)
	$(CC) $(CFLAGS) $(WARN) -I$(B)/proto -Irepaird -Ingx_plinth_module \
	    -I$(shell pg_config --includedir) -o $@ \
	    $(REPAIRD_SRCS) $(PROTO_C) $(REPAIRD_LIBS)

$(B)/unit/test_repaird_config: repaird/test/test_repaird_config.c repaird/config.c repaird/log.c $(REPAIRD_HDRS)
	mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(WARN) -Irepaird -Ingx_plinth_module \
	    -I$(shell pg_config --includedir) -o $@ \
	    repaird/test/test_repaird_config.c repaird/config.c repaird/log.c -lyaml -lm

# C unit tests: pure code only (the ring, the block-checksum file format).
$(B)/unit/test_ring: t/unit/test_ring.c ngx_plinth_module/ngx_plinth_ring.c ngx_plinth_module/ngx_plinth_ring.h
	mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(WARN) -Ingx_plinth_module -o $@ \
	    t/unit/test_ring.c ngx_plinth_module/ngx_plinth_ring.c -lxxhash -lm

$(B)/unit/test_blockfile: t/unit/test_blockfile.c datanode/blockfile.c datanode/blockfile.h
	mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(WARN) -Idatanode -o $@ \
	    t/unit/test_blockfile.c datanode/blockfile.c -lxxhash

$(B)/unit/test_sigv4: t/unit/test_sigv4.c ngx_plinth_module/ngx_plinth_sigv4.c ngx_plinth_module/ngx_plinth_sigv4.h
	mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(WARN) -Ingx_plinth_module -o $@ \
	    t/unit/test_sigv4.c ngx_plinth_module/ngx_plinth_sigv4.c -lcrypto

$(B)/unit/test_chunked: t/unit/test_chunked.c ngx_plinth_module/ngx_plinth_chunked.c ngx_plinth_module/ngx_plinth_chunked.h ngx_plinth_module/ngx_plinth_sigv4.c ngx_plinth_module/ngx_plinth_sigv4.h
	mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(WARN) -Ingx_plinth_module -o $@ \
	    t/unit/test_chunked.c ngx_plinth_module/ngx_plinth_chunked.c \
	    ngx_plinth_module/ngx_plinth_sigv4.c -lcrypto

$(B)/unit/test_crc: t/unit/test_crc.c ngx_plinth_module/ngx_plinth_crc.c ngx_plinth_module/ngx_plinth_crc.h
	mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(WARN) -Ingx_plinth_module -o $@ \
	    t/unit/test_crc.c ngx_plinth_module/ngx_plinth_crc.c -lisal -lz

unit: $(UNIT_TESTS)

# Fuzzing (fuzz/README.md): libFuzzer targets over the parsers of untrusted
# bytes, built with clang into build/fuzz/. `make fuzz FUZZ_SECONDS=N` runs
# each target N seconds from its committed seed corpus (fuzz/corpus/<t>/;
# new inputs go to build/fuzz/work/<t>/) and fails on any crash, leak or
# timeout. t/97-fuzz-regressions.t replays the committed inputs.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS  := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -g -O1 $(WARN) -Ifuzz
FUZZ_TARGETS := sigv4_authorization sigv4_presigned sigv4_canonical chunked \
                crc ring blockfile dn_config rd_config proto xml dn_http \
                lifecycle batch multi
FUZZ_BINS    := $(addprefix $(B)/fuzz/,$(FUZZ_TARGETS))
SIGV4_SRC    := ngx_plinth_module/ngx_plinth_sigv4.c ngx_plinth_module/ngx_plinth_sigv4.h

$(B)/fuzz/sigv4_%: fuzz/sigv4_%.c fuzz/fuzz.h $(SIGV4_SRC)
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ingx_plinth_module -o $@ $< \
	    ngx_plinth_module/ngx_plinth_sigv4.c -lcrypto

$(B)/fuzz/chunked: fuzz/chunked.c fuzz/fuzz.h $(SIGV4_SRC) ngx_plinth_module/ngx_plinth_chunked.c ngx_plinth_module/ngx_plinth_chunked.h
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ingx_plinth_module -o $@ $< \
	    ngx_plinth_module/ngx_plinth_chunked.c \
	    ngx_plinth_module/ngx_plinth_sigv4.c -lcrypto

$(B)/fuzz/crc: fuzz/crc.c fuzz/fuzz.h ngx_plinth_module/ngx_plinth_crc.c ngx_plinth_module/ngx_plinth_crc.h
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ingx_plinth_module -o $@ $< \
	    ngx_plinth_module/ngx_plinth_crc.c -lisal -lz

$(B)/fuzz/ring: fuzz/ring.c fuzz/fuzz.h ngx_plinth_module/ngx_plinth_ring.c ngx_plinth_module/ngx_plinth_ring.h
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ingx_plinth_module -o $@ $< \
	    ngx_plinth_module/ngx_plinth_ring.c -lxxhash

$(B)/fuzz/blockfile: fuzz/blockfile.c fuzz/fuzz.h datanode/blockfile.c datanode/blockfile.h
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Idatanode -o $@ $< datanode/blockfile.c \
	    -lxxhash

$(B)/fuzz/dn_config: fuzz/dn_config.c fuzz/fuzz.h fuzz/config_shim.h datanode/config.c datanode/config.h datanode/log.c datanode/blockfile.c
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Idatanode -o $@ $< datanode/config.c \
	    datanode/log.c datanode/blockfile.c -lyaml -lxxhash -ldl

$(B)/fuzz/rd_config: fuzz/rd_config.c fuzz/fuzz.h fuzz/config_shim.h repaird/config.c repaird/log.c $(REPAIRD_HDRS)
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Irepaird -Ingx_plinth_module \
	    -I$(shell pg_config --includedir) -o $@ $< repaird/config.c \
	    repaird/log.c ngx_plinth_module/ngx_plinth_ring.c \
	    -lyaml -lxxhash -lm -ldl

$(B)/fuzz/proto: fuzz/proto.c fuzz/fuzz.h $(PROTO_C) $(PROTO_H)
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(B)/proto -o $@ $< $(PROTO_C) -lprotobuf-c

# xml, lifecycle and batch link the gateway's pure body parsers: each
# target's own parser ($(1)) and the libraries it parses with ($(2)).
PARSE_HDRS := ngx_plinth_module/ngx_plinth_parse.h \
              ngx_plinth_module/ngx_plinth_pgarray.h \
              ngx_plinth_module/ngx_plinth_xmlread.h \
              fuzz/fuzz.h fuzz/fuzz_alloc.h fuzz/fuzz_libxml.h

define parser_fuzzer
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ingx_plinth_module \
	    $(shell pkg-config --cflags $(2)) -o $@ $< \
	    ngx_plinth_module/$(1).c \
	    $(shell pkg-config --libs $(2))
endef

$(B)/fuzz/xml: fuzz/xml.c ngx_plinth_module/ngx_plinth_s3_parse.c \
    ngx_plinth_module/ngx_plinth_s3_parse.h $(PARSE_HDRS)
	$(call parser_fuzzer,ngx_plinth_s3_parse,libxml-2.0)

$(B)/fuzz/lifecycle: fuzz/lifecycle.c \
    ngx_plinth_module/ngx_plinth_lifecycle_parse.c \
    ngx_plinth_module/ngx_plinth_lifecycle_parse.h $(PARSE_HDRS)
	$(call parser_fuzzer,ngx_plinth_lifecycle_parse,libxml-2.0)

$(B)/fuzz/batch: fuzz/batch.c ngx_plinth_module/ngx_plinth_batch_parse.c \
    ngx_plinth_module/ngx_plinth_batch_parse.h $(PARSE_HDRS)
	$(call parser_fuzzer,ngx_plinth_batch_parse,libxml-2.0 jansson)

# multi: the gateway's walk of a data node's multi-read answer.
$(B)/fuzz/multi: fuzz/multi.c fuzz/fuzz.h ngx_plinth_module/ngx_plinth_multi.c ngx_plinth_module/ngx_plinth_multi.h $(PROTO_C) $(PROTO_H)
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(B)/proto -Ingx_plinth_module -o $@ $< \
	    ngx_plinth_module/ngx_plinth_multi.c $(PROTO_C) -lprotobuf-c

# dn_http includes datanode/http.c (its parsers are static).
$(B)/fuzz/dn_http: fuzz/dn_http.c fuzz/fuzz.h $(DATANODE_SRCS) $(DATANODE_HDRS) $(PROTO_C) $(PROTO_H)
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(B)/proto -Idatanode -Ingx_plinth_module -o $@ $< \
	    $(filter-out datanode/http.c datanode/main.c,$(DATANODE_SRCS)) \
	    $(PROTO_C) $(DATANODE_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Benchmark tools (bench/): the S3 load generator and the fsync ceiling.
BENCH_TOOLS := $(B)/plinth-loadgen $(B)/plinth-fsyncbench $(B)/plinth-chaos \
               $(B)/plinth-dnput

$(B)/plinth-loadgen: bench/loadgen.c bench/s3curl.h
	mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/loadgen.c -lcurl

# The client side of the crash-consistency checker (make chaos, t/96).
$(B)/plinth-chaos: bench/chaos.c bench/s3curl.h
	mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/chaos.c -lcurl -lcrypto

$(B)/plinth-fsyncbench: bench/fsyncbench.c
	mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -pthread -o $@ bench/fsyncbench.c

# PUTs straight to one data node (group commit on/off, t/06).
$(B)/plinth-dnput: bench/dnput.c $(HOP_SRCS) $(HOP_HDRS)
	mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -pthread -Ingx_plinth_module -o $@ \
	    bench/dnput.c $(HOP_SRCS) -lcurl -lcrypto

bench-tools: $(BENCH_TOOLS)

# make bench BENCH_ARGS=--quick
bench: all bench-tools
	bench/run $(BENCH_ARGS)

# Crash-consistency checker (README): clients PUT/GET/DELETE while data
# nodes are killed and paused, nginx workers killed, PostgreSQL restarted;
# then the history is checked. make test runs it for 30 s.
CHAOS_SECONDS ?= 120

# a 1 GiB GET from throttled data nodes, unstriped and striped
# (make bench-stripe STRIPE_ARGS="--size-mb 256")
bench-stripe: all
	bench/striped-get $(STRIPE_ARGS)

chaos: all bench-tools
	CHAOS_SECONDS=$(CHAOS_SECONDS) prove -v t/96-chaos.t

test: all unit bench-tools fuzz-build
ifeq ($(SAN),1)
	scripts/san-test.sh $(B)
else
	scripts/lint-clang.sh $(B)
	scripts/prove-all.sh $(B)
endif

# the module's sources under clang's warnings (what make test SAN=1 compiles)
lint: module
	scripts/lint-clang.sh $(B)

run: deps all
	bin/plinth-cluster start --dir $(RUN_DIR) --port $(PORT) --repaird --gateways $(GATEWAYS)

stop:
	bin/plinth-cluster stop --dir $(RUN_DIR) --port $(PORT) --repaird

clean:
	rm -rf build build-san t/js/node_modules
