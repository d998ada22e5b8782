# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attribute descriptions shared by the modules of ucops.webex."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in check mode and return the changed status that a real run would have, without
        modifying the Webex org or the inventory.
  diff_mode:
    description:
      - Returns details of what has changed (or would change in check mode) in diff mode.
  idempotent:
    description:
      - When run twice in a row with the same arguments and an unchanged org, the second run
        reports C(changed=false) and changes nothing.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""
