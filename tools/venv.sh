#!/bin/sh
# The interpreter and virtualenv checks of `make setup`, made before it downloads anything.
#
#   tools/venv.sh python NAME               the path of interpreter NAME if it is a supported Python
#                                           (else one line `error: ...` on stderr, exit status 1)
#   tools/venv.sh plan VENV NAME [chosen]   what setting up VENV takes, as one line:
#                                           `reuse` (it is complete), `build` (there is none),
#                                           `rebuild <why>`, or `error <message>`
#   tools/venv.sh prepare VENV NAME [chosen]
#                                           carries out the plan's first step: removes a VENV to rebuild,
#                                           and creates VENV with NAME when there is none
#
# NAME is what PYTHON says (python3, python3.13, a path); "chosen" means the user set PYTHON. A pyenv
# shim that is not active (`pyenv: python3.13: command not found`) is looked up under
# `pyenv root`/versions instead. A venv is complete once `make setup` has written its stamp
# (.tfnlp-installed): one without it was left by a set-up that did not finish. Rebuilt rather than
# reused: such a half-built venv, one whose Python no longer runs or is not supported, and one of
# another Python version than the PYTHON the user chose.
set -u

# The Pythons that requirements.txt installs on (pyproject.toml's requires-python says the same).
SUPPORTED="3.11 3.12 3.13"
SUPPORTED_TEXT="3.11, 3.12 or 3.13"
STAMP=.tfnlp-installed

version_of() {  # X.Y of interpreter $1, or nothing if it does not run.
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}

supported() {
  case " $SUPPORTED " in *" $1 "*) return 0 ;; esac
  return 1
}

resolve() {  # The interpreter that name $1 runs (under pyenv if its shim is not active), or nothing.
  executable=$("$1" -c 'import sys; print(sys.executable)' 2>/dev/null)
  if [ -n "$executable" ]; then
    printf '%s\n' "$executable"
    return
  fi
  case "$1" in
    python3.*[0-9])
      root=$(pyenv root 2>/dev/null) || return 0
      found=""
      for candidate in "$root"/versions/"${1#python}".*/bin/"$1"; do
        [ -n "$(version_of "$candidate")" ] && found=$candidate
      done
      [ -n "$found" ] && printf '%s\n' "$found"
      ;;
  esac
}

installed() {  # The supported Pythons found by name, e.g. "python3.12, python3.13".
  list=""
  for version in $SUPPORTED; do
    [ -n "$(resolve "python$version")" ] && list="${list:+$list, }python$version"
  done
  printf '%s\n' "$list"
}

choose() {  # The interpreter for name $1, or `error <message>`.
  path=$(resolve "$1")
  version=""
  [ -n "$path" ] && version=$(version_of "$path")
  if [ -n "$version" ] && supported "$version"; then
    printf '%s\n' "$path"
    return
  fi
  what="PYTHON=$1 is Python $version"
  [ -z "$version" ] && what="PYTHON=$1 was not found"
  found=$(installed)
  if [ -n "$found" ]; then
    example=${found##*, }
    hint="found here: $found"
  else
    example=python3.13
    hint="none found here: install one (python.org, the system's packages, or pyenv install 3.13)"
  fi
  echo "error $what; tfnlp needs Python $SUPPORTED_TEXT: choose one with PYTHON," \
       "e.g. PYTHON=$example make ${GOAL:-setup} ($hint)"
}

venv_version() {  # X.Y of the venv in $1 (from pyvenv.cfg), or nothing.
  sed -n 's/^version\(_info\)\{0,1\} *= *\([0-9]*\.[0-9]*\).*/\2/p' "$1/pyvenv.cfg" 2>/dev/null | head -n 1
}

stale() {  # Why venv $1 cannot be reused whatever PYTHON is, or nothing.
  if [ ! -f "$1/$STAMP" ]; then
    echo "was left half-built by a set-up that did not finish (no $STAMP)"
  elif [ -z "$(version_of "$1/bin/python")" ]; then
    echo "has a Python that no longer runs"
  elif ! supported "$(venv_version "$1")"; then
    echo "was made by Python $(venv_version "$1"), which tfnlp does not support"
  fi
}

plan() {  # $1 venv, $2 name, $3 "chosen" or not.
  if [ -e "$1" ] && [ ! -f "$1/pyvenv.cfg" ]; then
    echo "error VENV=$1 exists and is not a virtualenv (no pyvenv.cfg): remove it or choose another VENV"
    return
  fi
  why=""
  if [ -e "$1" ]; then
    why=$(stale "$1")
    if [ -z "$why" ] && [ "${3:-}" != chosen ]; then
      echo reuse  # PYTHON is not used.
      return
    fi
  fi
  python=$(choose "$2")
  case "$python" in error*) echo "$python"; return ;; esac
  if [ ! -e "$1" ]; then
    echo build
  elif [ -n "$why" ]; then
    echo "rebuild $why"
  elif [ "$(version_of "$python")" != "$(venv_version "$1")" ]; then
    echo "rebuild was made by Python $(venv_version "$1"), not PYTHON=$2 (Python $(version_of "$python"))"
  else
    echo reuse
  fi
}

case "${1:-}" in
  python)
    python=$(choose "$2")
    case "$python" in error*) echo "error: ${python#error }" >&2; exit 1 ;; esac
    printf '%s\n' "$python"
    ;;
  plan)
    plan "$2" "$3" "${4:-}"
    ;;
  prepare)
    venv=$2
    steps=$(plan "$venv" "$3" "${4:-}")
    case "$steps" in
      error*)
        echo "error: ${steps#error }" >&2
        exit 1
        ;;
      rebuild*)
        echo "$venv ${steps#rebuild }: rebuilding it"
        rm -rf "$venv"
        ;;
    esac
    if [ ! -e "$venv" ]; then
      python=$(choose "$3")
      echo "creating $venv with $python (Python $(version_of "$python"))"
      "$python" -m venv "$venv" || { rm -rf "$venv"; exit 1; }
    fi
    ;;
  *)
    echo "usage: $0 python NAME | plan VENV NAME [chosen] | prepare VENV NAME [chosen]" >&2
    exit 2
    ;;
esac
