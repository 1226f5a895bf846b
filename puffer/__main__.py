from puffer.cli import main

main()
