# Plinth — top-level build.
#   make            build the nginx module, the data node and repaird
#   make run        install dependencies, build, start a local cluster in ./run
#   make stop       stop the local cluster (data stays in ./run)
#   make test       build and run every test (prove)
#   make bench      build the load generator and run the benchmark (bench/run)

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wpointer-arith
PORT     ?= 9000
RUN_DIR  ?= run
B        := build

PROTO_C  := $(B)/proto/plinth.pb-c.c
PROTO_H  := $(B)/proto/plinth.pb-c.h

DATANODE_SRCS := $(wildcard datanode/*.c)
DATANODE_HDRS := $(wildcard datanode/*.h)
DATANODE_LIBS := -lmicrohttpd -lyaml -lprotobuf-c -lxxhash -lcurl -lpthread

REPAIRD_SRCS := $(wildcard repaird/*.c) ngx_plinth_module/ngx_plinth_ring.c
REPAIRD_HDRS := $(wildcard repaird/*.h) ngx_plinth_module/ngx_plinth_ring.h
REPAIRD_LIBS := -lpq -lcurl -lmicrohttpd -lyaml -lprotobuf-c -lxxhash -lm

UNIT_TESTS := $(B)/unit/test_repaird_config \
              $(B)/unit/test_ring $(B)/unit/test_blockfile \
              $(B)/unit/test_sigv4 $(B)/unit/test_chunked \
              $(B)/unit/test_crc

.PHONY: all module datanode repaird proto deps unit test run stop clean bench bench-tools

all: module datanode repaird

deps:
	./scripts/install-deps.sh

proto: $(PROTO_C)

$(PROTO_C) $(PROTO_H): proto/plinth.proto
	mkdir -p $(B)/proto
	protoc-c --proto_path=proto --c_out=$(B)/proto proto/plinth.proto

module: $(B)/ngx_plinth_module.so

$(B)/ngx_plinth_module.so: config scripts/build-module.sh $(wildcard ngx_plinth_module/*.[ch])
	./scripts/build-module.sh

datanode: $(B)/plinth-datanode

$(B)/plinth-datanode: $(DATANODE_SRCS) $(DATANODE_HDRS) $(PROTO_C) $(PROTO_H)
	$(CC) $(CFLAGS) $(WARN) -I$(B)/proto -Idatanode -o $@ \
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

# Benchmark tools (bench/): the S3 load generator and the fsync ceiling.
BENCH_TOOLS := $(B)/plinth-loadgen $(B)/plinth-fsyncbench

$(B)/plinth-loadgen: bench/loadgen.c
	mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/loadgen.c -lcurl

$(B)/plinth-fsyncbench: bench/fsyncbench.c
	mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -pthread -o $@ bench/fsyncbench.c

bench-tools: $(BENCH_TOOLS)

# make bench BENCH_ARGS=--quick
bench: all bench-tools
	bench/run $(BENCH_ARGS)

test: all unit bench-tools
	prove t/*.t

run: deps all
	bin/plinth-cluster start --dir $(RUN_DIR) --port $(PORT) --repaird

stop:
	bin/plinth-cluster stop --dir $(RUN_DIR) --port $(PORT) --repaird

clean:
	rm -rf $(B) t/js/node_modules
