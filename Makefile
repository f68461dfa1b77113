# SPDX-License-Identifier: MIT
# svcd: plain make, pkg-config, quiet unless V=1.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=
BUILD ?= build

PKGS := libcjson libnl-3.0 libnl-route-3.0 libmnl libnftnl yaml-0.1 zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's libev-dev ships no .pc file; fall back to -lev.
EV_LIBS := $(shell pkg-config --libs libev 2>/dev/null || echo -lev)

CC ?= cc
CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Wformat=2 -Wno-format-truncation -D_GNU_SOURCE -MMD -MP -Iproxy -Inetlink -Ilauncher -Idns -Ilb $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) $(EV_LIBS) -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

# launcher/svcrun*.c is the container launcher: its own binary, libc only,
# so that starting a container costs no dynamic loading of svcd's libraries.
SVCRUN_SRC := $(wildcard launcher/svcrun*.c)
CORE_SRC := $(filter-out proxy/svcd.c $(SVCRUN_SRC),$(wildcard proxy/*.c netlink/*.c lb/*.c dns/*.c \
	launcher/*.c))
CLI_SRC := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_HELPERS := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
SAN := $(BUILD)/san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(SAN)/tests/%)

.PHONY: all install uninstall run test check unit unit-san integration deps bench bench-tools \
	format format-check clean fuzz
.DEFAULT_GOAL := all

all: $(BUILD)/svcd $(BUILD)/svcctl $(BUILD)/svcrun

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsvcd.a: $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/svcd: $(BUILD)/proxy/svcd.o $(BUILD)/libsvcd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/svcctl: $(CLI_OBJ) $(BUILD)/libsvcd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/svcrun: $(SVCRUN_SRC:%.c=$(BUILD)/%.o)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(SAN)/svcrun: $(SVCRUN_SRC)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD/SAN  $@")
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) $(LDFLAGS) -o $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_HELPERS) $(BUILD)/libsvcd.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(UNIT_HELPERS) $(BUILD)/libsvcd.a $(LDLIBS)

# Benchmark drivers, linked like the unit tests.
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
$(BUILD)/bench/%: bench/%.c $(BUILD)/libsvcd.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsvcd.a $(LDLIBS)

bench-tools: $(BENCH_BIN)

# Traffic tools for the data-plane tests: no libraries, plain CFLAGS.
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $<

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
$(SAN)/tests/%: tests/unit/%.c $(UNIT_HELPERS) $(CORE_SRC)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD/SAN  $@")
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(UNIT_HELPERS) \
		$(CORE_SRC) $(LDLIBS)

# Sanitized daemon and CLI, used by the integration tests (SVCD_SAN=1).
$(SAN)/svcd: proxy/svcd.c $(CORE_SRC)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD/SAN  $@")
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SAN)/svcctl: $(CLI_SRC) $(CORE_SRC)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD/SAN  $@")
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz harnesses: replayed over their corpus under the sanitizers in `make
# test`; `make fuzz` runs libFuzzer (clang) for FUZZ_SECONDS on each.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(SAN)/fuzz/replay_%)
FUZZ_SECONDS ?= 60

$(SAN)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(CORE_SRC)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD/SAN  $@")
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(CORE_SRC)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD/FUZZ $@")
	$(Q)clang $(filter-out -MMD -MP -Wno-format-truncation,$(CFLAGS)) -O1 -g \
		-fsanitize=fuzzer,address,undefined $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/fuzz_%)
	$(Q)for f in $^; do n=$${f##*/fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
		|| exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/svcd $(BUILD)/svcctl $(BUILD)/svcrun $(DESTDIR)$(BINDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/svcd $(DESTDIR)$(BINDIR)/svcctl $(DESTDIR)$(BINDIR)/svcrun

# The README's two commands.  Each installs what is missing, then builds.
deps:
	$(Q)scripts/install-deps.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	./$(BUILD)/svcd $(ARGS)

test: deps
	$(Q)$(MAKE) --no-print-directory check

check: all $(UNIT_BIN) $(SAN_UNIT_BIN) $(SAN)/svcd $(SAN)/svcctl $(SAN)/svcrun $(FUZZ_REPLAY) $(TOOLS)
	$(Q)tests/run.sh $(BUILD)

unit: $(UNIT_BIN)
	$(Q)for t in $(UNIT_BIN); do $$t || exit 1; done

unit-san: $(SAN_UNIT_BIN)
	$(Q)for t in $(SAN_UNIT_BIN); do $$t || exit 1; done

bench: all bench-tools
	$(Q)bench/run.sh $(BUILD)

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
