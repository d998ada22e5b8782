# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation fragment for modules that read or write the license inventory."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  inventory_db:
    description:
      - Path of the SQLite file that holds the license inventory.
      - When not set, the E(WEBEX_INVENTORY_DB) environment variable is used.
      - When neither is set, the path is C($XDG_DATA_HOME/ucops.webex/inventory.db), or
        C(~/.local/share/ucops.webex/inventory.db) when E(XDG_DATA_HOME) is unset or not an
        absolute path.
      - M(ucops.webex.webex_customer) creates a missing file and its directory, readable
        only by the user who runs the module. The other modules fail on a missing file, with a
        message to add customers first. The file is switched to WAL mode, so
        C(inventory.db-wal) and C(inventory.db-shm) files appear beside it while it is in
        use.
      - The path must be on a local file system; SQLite locking is not reliable over network
        file systems such as NFS.
      - A database URL such as C(postgresql://host/db) is refused before anything is
        created; database servers are not supported.
      - A file that is not an SQLite database, or whose schema is newer than this collection
        supports, is left unchanged and the module fails with a message naming the file.
      - The inventory never stores access tokens, refresh tokens or client secrets.
    type: path
notes:
  - Several tasks, forks or hosts on the same controller may write to the same inventory file
    at once. Each write is one transaction, and a writer waits up to 60 seconds for the others
    before it fails.
"""
