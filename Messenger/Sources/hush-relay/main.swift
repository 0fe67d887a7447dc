print("hush-relay")
