# goroutines -- build, test and check targets.
# `make deps` installs Debian's packages; `make` builds build/goroutines/core.so;
# `make test` runs every spec and ends with the line "N passed, N failed".

LUA      ?= lua5.4
CC       ?= cc
BUSTED   ?= /usr/bin/busted
CFLAGS   ?= -O2 -g
LUA_INC  := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
UV_LIBS  := $(shell pkg-config --libs libuv 2>/dev/null || echo -luv)
WARN     := -Wall -Wextra -Wshadow -Wundef -Wmissing-declarations
ifeq ($(DEBUG),1)
  CFLAGS += -DGR_DEBUG -O0
endif
ifeq ($(WERROR),1)
  WARN += -Werror
endif
# No -fvisibility: the sources hide what is not public themselves (gr.h),
# as they must for LuaRocks' builtin build.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) -Iinclude \
             $(LUA_INC) $(CFLAGS)
LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)

SRC  := $(wildcard src/*.c)
HDR  := $(wildcard src/*.h) include/goroutines.h
BUILD ?= build
OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))
SO   := $(BUILD)/goroutines/core.so
# The library, shared (soname libgoroutines.so.0) and static, from the
# objects of the Lua module.
LIBSO := $(BUILD)/libgoroutines.so.0
LIBA  := $(BUILD)/libgoroutines.a
LIBS  := $(SO) $(LIBSO) $(BUILD)/libgoroutines.so $(LIBA) \
         $(BUILD)/goroutines.pc

# C hosts of the embedding API: the tests (spec/ctest/, linked with the
# static library) and the examples (examples/host/, with the shared one).
CTESTS   := $(patsubst spec/ctest/%.c,$(BUILD)/ctest/%,$(wildcard spec/ctest/*.c))
EXAMPLES := $(patsubst examples/host/%.c,$(BUILD)/examples/%,\
              $(wildcard examples/host/*.c))
HOSTS    := $(CTESTS) $(EXAMPLES)
# The benchmarks whose Lua side is a C host (bench/*.c), for make bench.
BENCHHOSTS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
HOST_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude $(LUA_INC) $(CFLAGS)
HOSTEXTRA ?=

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
LUA_CMOD ?= $(LIBDIR)/lua/5.4
LUA_LMOD ?= $(PREFIX)/share/lua/5.4

# Environment that makes `require "goroutines"` find this checkout.
RUNENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;" \
         LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

# Sanitizer runtimes, preloaded into the (uninstrumented) interpreter only.
ASAN_RT = $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so)

DEPS := lua5.4 liblua5.4-dev libuv1-dev lua-busted luarocks pkg-config gcc make

.PHONY: all deps test demo asan tsan valgrind gcstress fuzz oom bench clean \
        install

all: $(LIBS) $(HOSTS)

# init.lua compiled in, for gr_open (checked in: the rockspec's builtin
# build cannot generate it; .ci/run checks that it is up to date).
src/initlua.h: lua/goroutines/init.lua tools/luaembed.lua
	$(LUA) tools/luaembed.lua gr_initlua < $< > $@.tmp
	@mv $@.tmp $@

$(BUILD)/obj/%.o: src/%.c $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(SO): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@.tmp $(OBJ) $(UV_LIBS) -lpthread $(LDFLAGS)
	@mv $@.tmp $@   # a new inode: running processes keep the old one

# Lua itself is the host's: the library leaves its symbols undefined, as a
# Lua module does, so that a host with its own copy of Lua can use it.
$(LIBSO): $(OBJ)
	$(CC) -shared -Wl,-soname,libgoroutines.so.0 -o $@.tmp $(OBJ) \
	  $(UV_LIBS) -lpthread $(LDFLAGS)
	@mv $@.tmp $@

$(BUILD)/libgoroutines.so: $(LIBSO)
	ln -sf libgoroutines.so.0 $@

$(LIBA): $(OBJ)
	@rm -f $@
	$(AR) rcs $@ $(OBJ)

# goroutines.pc for PREFIX: the build's copy, and install's (which writes
# its own, for the PREFIX of that call).
PCGEN = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
            -e 's|@INCDIR@|$(INCDIR)|' goroutines.pc.in >
$(BUILD)/goroutines.pc: goroutines.pc.in Makefile
	@mkdir -p $(dir $@)
	$(PCGEN) $@

$(BUILD)/ctest/%: spec/ctest/%.c spec/ctest/ctest.h $(LIBA) $(HOSTEXTRA)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(HOSTEXTRA) $(LIBA) $(LUA_LIBS) \
	  $(UV_LIBS) -lpthread -lm $(LDFLAGS)

$(BUILD)/examples/%: examples/host/%.c $(BUILD)/libgoroutines.so $(HOSTEXTRA)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(HOSTEXTRA) -L$(BUILD) -lgoroutines \
	  -Wl,-rpath,'$$ORIGIN/..' $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

$(BUILD)/bench/%: bench/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(LIBA) $(LUA_LIBS) $(UV_LIBS) \
	  -lpthread -lm $(LDFLAGS)

install: $(LIBS) $(HOSTS)
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(LUA_CMOD)/goroutines $(DESTDIR)$(LUA_LMOD)/goroutines
	install -m 644 include/goroutines.h $(DESTDIR)$(INCDIR)/
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libgoroutines.so.0 $(DESTDIR)$(LIBDIR)/libgoroutines.so
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	$(PCGEN) $(DESTDIR)$(LIBDIR)/pkgconfig/goroutines.pc
	install -m 755 $(SO) $(DESTDIR)$(LUA_CMOD)/goroutines/core.so
	install -m 644 lua/goroutines/init.lua $(DESTDIR)$(LUA_LMOD)/goroutines/

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && apt-get install -y $$missing; \
	else echo "all dependencies present"; fi

test: $(LIBS) $(HOSTS)
	@$(RUNENV) GR_BUILD=$(CURDIR)/$(BUILD) LUA="$(LUA)" BUSTED="$(BUSTED)" sh spec/run.sh $(SPECS)

demo: $(SO)
	@$(RUNENV) $(LUA) examples/demo.lua

# Sanitizer builds go to their own build folder; the runtime is preloaded
# into the interpreter that runs the specs.
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" \
	  LUA="env LD_PRELOAD=$(ASAN_RT) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(LUA)" \
	  test

# ThreadSanitizer cannot be preloaded into a process that starts a shell
# (the specs do), so the specs run in a small interpreter linked with it.
tsan: build/tsan/lua
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0:suppressions=$(CURDIR)/spec/tsan.supp \
	 $(MAKE) --no-print-directory BUILD=build/tsan \
	  CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	  HOSTEXTRA=spec/longjmp_chk.c LUA="$(CURDIR)/build/tsan/lua" test

build/tsan/lua: spec/host.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -fsanitize=thread $(LUA_INC) -o $@ spec/host.c \
	  $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4) -lm

# The seeded random tests under ASan+UBSan, with fresh seeds, for
# FUZZ_SECONDS (default 120).
fuzz:
	@$(MAKE) --no-print-directory BUILD=build/asan \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" build/asan/goroutines/core.so
	@LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" \
	 LUA_CPATH="$(CURDIR)/build/asan/?.so;;" \
	 LUA="env LD_PRELOAD=$(ASAN_RT) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(LUA)" \
	 sh spec/fuzz.sh

# The allocation-failure sweep: the runtime built with spec/oomshim.h, run
# by spec/oomhost, whose allocator fails the Nth allocation (spec/oom.sh).
oom: build/oom/oomhost
	@$(MAKE) --no-print-directory BUILD=build/oom \
	  CFLAGS="-O1 -g -include $(CURDIR)/spec/oomshim.h" build/oom/goroutines/core.so
	@LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" \
	 LUA_CPATH="$(CURDIR)/build/oom/?.so;;" sh spec/oom.sh

build/oom/oomhost: spec/oomhost.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -rdynamic $(LUA_INC) -o $@ spec/oomhost.c \
	  $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4) -lm

valgrind: $(LIBS) $(HOSTS)
	@$(RUNENV) GR_BUILD=$(CURDIR)/$(BUILD) SPEC_TIME_SCALE=10 \
	 HOSTWRAP="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	 LUA="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $(LUA)" \
	 BUSTED=$(BUSTED) sh spec/run.sh $(SPECS)

gcstress: $(SO)
	@GOROUTINES_GCSTRESS=1 $(MAKE) --no-print-directory test

# make bench BASE=<rev>: before (rev, built in a temporary worktree) and
# after (this checkout) against Go, on issue 11's workloads.
bench: $(SO) $(BENCHHOSTS)
	@$(RUNENV) LUA="$(LUA)" BENCH_HOSTBIN="$(CURDIR)/$(BUILD)/bench" \
	  sh bench/$(if $(BASE),compare_rev.sh "$(BASE)",run.sh)

clean:
	rm -rf build
