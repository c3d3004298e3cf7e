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

# The package is installed once per version of pyproject.toml and of what this function
# installs (a stamp in .venv), so that a restart takes a second, not a pip run. The install
# is editable: code changes need no reinstall.
RESEMBLYZER="resemblyzer==0.1.4"

python_venv() {
    local extras="$1"
    local stamp=.venv/.visio-installed
    local key
    key="$(sha256sum <pyproject.toml | cut -c1-16) extras=${extras} ${RESEMBLYZER}"
    if [ -x .venv/bin/python ] && .venv/bin/python -c "" 2>/dev/null \
        && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
        return
    fi
    if ! python3 -m venv --help >/dev/null 2>&1; then apt_install python3-venv; fi
    if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
    echo "visio: installing the Python package${extras:+ with $extras} in .venv" >&2
    rm -f "$stamp"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".${extras}"
    # The speaker encoder's weights ship inside resemblyzer's wheel; Visio runs them with
    # numpy, so none of its dependencies (torch above all, several GB) are installed.
    .venv/bin/python -m pip install -q --no-deps "$RESEMBLYZER"
    echo "$key" >"$stamp"
}

# The unprivileged system account the server, Janus and the transcription tools run as:
# no password, no login shell, its home is the data folder it owns.
service_user() {
    local user="$1" home="$2"
    if ! id -u "$user" >/dev/null 2>&1; then
        echo "visio: creating the system user $user" >&2
        as_root useradd --system --user-group --home-dir "$home" --no-create-home \
            --shell /usr/sbin/nologin "$user"
    fi
}

# The service user must read (not write) the checkout and run its Python. When a folder on
# the way is closed to others (a checkout in /root), it gets a traverse-only ACL for that
# user alone (`setfacl -m u:USER:x`), nothing else.
let_reach() {
    local user="$1" python=.venv/bin/python
    local path folder part parts
    if _runs_visio "$user" "$python"; then return; fi
    for path in "$PWD/.venv" "$(readlink -f "$python")"; do
        # From / down, each folder above `path`: one is reachable once those above it are.
        IFS=/ read -ra parts <<<"$(dirname "$path")"
        folder=""
        for part in "${parts[@]}"; do
            [ -n "$part" ] || continue
            folder="$folder/$part"
            if ! as_root runuser -u "$user" -- test -x "$folder"; then
                command -v setfacl >/dev/null 2>&1 || apt_install acl
                echo "visio: letting $user traverse $folder (setfacl -m u:$user:x)" >&2
                as_root setfacl -m "u:$user:x" "$folder"
            fi
        done
    done
    if ! _runs_visio "$user" "$python"; then
        echo "visio: the user $user cannot read $PWD or run $python:" \
            "make them readable by $user (or install Visio in /opt/visio)" >&2
        return 1
    fi
}

_runs_visio() {
    as_root runuser -u "$1" -- "$2" -c "import visio" 2>/dev/null
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
