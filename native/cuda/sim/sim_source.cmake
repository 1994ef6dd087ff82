# Copies one .cu file for the simulation build: `cmake -DIN=<file.cu> -DOUT=<file.cc> -P sim_source.cmake`.
# C++ has no `extern static`, so `extern __shared__ T name[];` (dynamic shared memory) cannot be a macro of the
# force-included header; it becomes a reference to the launch's dynamic shared memory instead. The statement stays
# on its line and a #line directive names the original file, so compiler and sanitizer reports point at the .cu.
file(READ "${IN}" source)
string(REGEX REPLACE
       "extern[ \t\r\n]+__shared__[ \t\r\n]+([^;{}]*[^A-Za-z0-9_;{}])([A-Za-z_][A-Za-z0-9_]*)[ \t]*\\[[ \t]*\\][ \t]*;"
       "\\1(&\\2)[] = ::pact::sim::DynamicShared{};" source "${source}")
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${source}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
