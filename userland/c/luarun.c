/* A minimal Lua 5.4 interpreter for the real-program tests: runs the script
 * argv[1] with the rest of argv in the global table `arg` (as lua.c does),
 * and reports an error as "lua: MESSAGE" with exit status 1. Lua's own
 * lua.c is not in the lua-src crate's sources, which boot/tests/programs.rs
 * builds this against with musl-gcc -static. */

#include <stdio.h>
#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: lua SCRIPT [ARGS]\n");
        return 2;
    }
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    int status = luaL_dofile(L, argv[1]);
    if (status != LUA_OK) {
        fprintf(stdout, "lua: %s\n", lua_tostring(L, -1));
        fflush(stdout);
    }
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
