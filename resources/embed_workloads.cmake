# Turns resources/workloads/*.json into a C++ source defining
#   extern const char* const brisk_builtin_workloads[][2];  // {name, JSON text}, ending {nullptr, nullptr}
# so the engine finds its built-in workloads without any file at run time.
# DIR: the folder of JSON files. OUTPUT: the .cpp to write.
file(GLOB inputs ${DIR}/*.json)
list(SORT inputs)
set(body "")
foreach(f ${inputs})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  string(APPEND body "const char brisk_workload_${name}[] = {${bytes}0};\n")
  list(APPEND entries "{\"${name}\", brisk_workload_${name}}")
endforeach()
list(JOIN entries ",\n    " table)
file(WRITE ${OUTPUT}.tmp
  "// Generated from resources/workloads/*.json; do not edit.\n"
  "namespace {\n${body}}  // namespace\n"
  "extern const char* const brisk_builtin_workloads[][2];\n"
  "const char* const brisk_builtin_workloads[][2] = {\n    ${table},\n    {nullptr, nullptr}};\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
