# Shared by run.sh and test.sh: install what is missing, nothing more.

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "visio: installing Debian packages: ${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Debian's janus package enables a system service with the demo configuration, whose
# HTTP and WebSocket APIs listen on every interface. Visio runs its own Janus with a
# locked-down config, so that service must not run.
disable_system_janus() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] \
        && systemctl is-enabled janus.service >/dev/null 2>&1; then
        echo "visio: disabling Debian's janus.service (its APIs would be public)" >&2
        as_root systemctl disable --now janus.service >/dev/null 2>&1 || true
    fi
}

# Debian starts the services of the packages it installs. The tests start their own
# nginx on loopback, by pid: the system's need not run (it would serve its default page
# on every interface).
disable_system_services() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        for unit in "$@"; do
            if systemctl is-enabled "$unit" >/dev/null 2>&1; then
                as_root systemctl disable --now "$unit" >/dev/null 2>&1 || true
            fi
        done
    fi
}

python_venv() {
    local extras="$1"
    if ! python3 -m venv --help >/dev/null 2>&1; then apt_install python3-venv; fi
    if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".${extras}"
    # The speaker encoder's weights ship inside resemblyzer's wheel; Visio runs them with
    # numpy, so none of its dependencies (torch above all, several GB) are installed.
    .venv/bin/python -m pip install -q --no-deps "resemblyzer==0.1.4"
}

# The tests' OpenID Connect provider runs on Node.js (Debian's is recent enough); its
# packages come from package-lock.json, reinstalled only when that file changes.
node_packages() {
    local dir="$1"
    if ! command -v node >/dev/null 2>&1; then
        apt_install nodejs npm
    elif ! command -v npm >/dev/null 2>&1; then
        apt_install npm
    fi
    if [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "visio: installing Node.js packages in $dir" >&2
        npm ci --prefix "$dir" --no-audit --no-fund >/dev/null
    fi
}
