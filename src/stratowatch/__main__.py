from stratowatch.cli import main

main()
