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
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) \
             $(LUA_INC) $(CFLAGS)

SRC  := $(wildcard src/*.c)
HDR  := $(wildcard src/*.h)
BUILD ?= build
SO   := $(BUILD)/goroutines/core.so

# Environment that makes `require "goroutines"` find this checkout.
RUNENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;" \
         LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

# Sanitizer runtimes, preloaded into the (uninstrumented) interpreter only.
ASAN_RT = $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so)

DEPS := lua5.4 liblua5.4-dev libuv1-dev lua-busted luarocks pkg-config gcc make

.PHONY: all deps test demo asan tsan valgrind gcstress fuzz oom bench clean

all: $(SO)

$(SO): $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@.tmp $(SRC) $(UV_LIBS) -lpthread $(LDFLAGS)
	@mv $@.tmp $@   # a new inode: running processes keep the old one

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && apt-get install -y $$missing; \
	else echo "all dependencies present"; fi

test: $(SO)
	@$(RUNENV) LUA="$(LUA)" BUSTED="$(BUSTED)" sh spec/run.sh $(SPECS)

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
	  LUA="$(CURDIR)/build/tsan/lua" test

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

valgrind: $(SO)
	@$(RUNENV) SPEC_TIME_SCALE=10 LUA="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $(LUA)" \
	 BUSTED=$(BUSTED) sh spec/run.sh $(SPECS)

gcstress: $(SO)
	@GOROUTINES_GCSTRESS=1 $(MAKE) --no-print-directory test

bench: $(SO)
	@$(RUNENV) LUA="$(LUA)" sh bench/run.sh

clean:
	rm -rf build
