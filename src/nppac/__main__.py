from nppac.cli import main

main()
