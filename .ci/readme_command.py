"""Prints one of the README's two set-up commands, so that CI runs exactly
what a newcomer is told to run: `install` (the first line of the code block
under "## Set up and train") or `test` (under "## Run the tests")."""
import re
import sys
from pathlib import Path

SECTIONS = {"install": "## Set up and train", "test": "## Run the tests"}


def readme_command(which, readme=Path(__file__).resolve().parents[1] / "README.md"):
    text = Path(readme).read_text()
    heading = SECTIONS[which]
    start = text.find("\n" + heading)
    if start < 0:
        raise SystemExit(f"README.md has no section starting {heading!r}")
    block = re.search(r"```bash\n(.*?)\n```", text[start:], re.S)
    if block is None:
        raise SystemExit(f"README.md's section {heading!r} has no ```bash block")
    return block.group(1).strip()


if __name__ == "__main__":
    print(readme_command(sys.argv[1]))
